using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OpencodeGateway.Ingest;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// Every event type the real opencode sends is accounted for in <c>docs/opencode-events.md</c>: forwarded, consumed by
/// the gateway, or ignored with why. One session is driven straight through opencode's REST API (not the gateway)
/// while the test reads <c>/global/event</c> itself and puts every line through <see cref="OpencodeEventNormalizer"/>.
/// </summary>
[Collection(OpencodeCollection.Name)]
public sealed partial class EventCatalogTests(OpencodeStack stack, ITestOutputHelper output)
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(120);

    private const string TodoPrompt =
        """plan tool=todowrite args={"todos":[{"content":"write tests","status":"pending","priority":"high"}]}""";

    private const string WritePrompt = """write tool=write args={"filePath":"notes.txt","content":"hello\n"}""";

    private enum Handling { Forwarded, Consumed, Ignored }

    [Fact]
    public async Task Every_event_type_opencode_sends_is_forwarded_consumed_or_documented_as_ignored()
    {
        var documented = ReadCatalog(Path.Combine(stack.RepoRoot, "docs", "opencode-events.md"));
        // A directory of its own: opencode boots an instance for it (its start-up events come whatever ran before) and
        // disposes it at the end.
        var directory = Directory.CreateTempSubdirectory("event-catalog-");
        List<RecordedEvent> events;
        try
        {
            await using var recorder = await GlobalEventRecorder.StartAsync(stack.BaseUrl);
            using var opencode = new HttpClient { BaseAddress = stack.BaseUrl, Timeout = StepTimeout };
            await new DirectRun(opencode, recorder, directory.FullName).DriveAsync();
            events = recorder.Events();
        }
        finally
        {
            directory.Delete(recursive: true);
        }

        var failures = new List<string>();
        failures.AddRange(events.Where(e => e.Kind == UpstreamEventKind.Malformed).Select(e => $"a line the normalizer cannot read: {e.Line}"));
        foreach (var group in events.GroupBy(e => e.Type).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var handling = HandlingOf(group.Select(e => e.Kind));
            output.WriteLine($"{group.Count(),5}  {group.Key,-24} {handling}");
            if (!documented.TryGetValue(group.Key, out var listed))
            {
                failures.Add($"opencode sent '{group.Key}' ({handling.ToString().ToLowerInvariant()}), which docs/opencode-events.md does not list");
            }
            else if (listed != handling)
            {
                failures.Add($"docs/opencode-events.md lists '{group.Key}' as {listed}, but the gateway treats it as {handling}");
            }
        }

        // Also the listed types the run did not produce: an event of a type listed as ignored or consumed must be
        // dropped, or met by the pump. (A type the normalizer maps wants its members: without them it is malformed.)
        foreach (var (type, listed) in documented.Where(d => d.Value != Handling.Forwarded))
        {
            var kind = OpencodeEventNormalizer.Normalize(JsonSerializer.SerializeToUtf8Bytes(new { payload = new { type, properties = new { } } })).Kind;
            if ((kind == UpstreamEventKind.Malformed ? Handling.Forwarded : HandlingOf([kind])) != listed)
            {
                failures.Add($"docs/opencode-events.md lists '{type}' as {listed}, but the normalizer reads it as {kind}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static Handling HandlingOf(IEnumerable<UpstreamEventKind> kinds)
    {
        var seen = kinds.ToHashSet();
        if (seen.Contains(UpstreamEventKind.ServerConnected) || seen.Contains(UpstreamEventKind.Heartbeat))
        {
            return Handling.Consumed;
        }

        // A type is forwarded when any of its events is (session.error without a session is dropped, with one it is not).
        return seen.Any(k => k is not (UpstreamEventKind.Ignored or UpstreamEventKind.Malformed)) ? Handling.Forwarded : Handling.Ignored;
    }

    /// <summary>
    /// The types in the tables of the doc's "Forwarded", "Consumed by the gateway" and "Ignored" sections (every
    /// backquoted type in a row's first cell), each with its section. An ignored type must say why.
    /// </summary>
    private static Dictionary<string, Handling> ReadCatalog(string path)
    {
        var sections = new Dictionary<string, Handling>
        {
            ["Forwarded"] = Handling.Forwarded, ["Consumed by the gateway"] = Handling.Consumed, ["Ignored"] = Handling.Ignored,
        };
        var catalog = new Dictionary<string, Handling>();
        Handling? section = null;
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                section = sections.Remove(line[3..].Trim(), out var handlingOfSection) ? handlingOfSection : null;
                continue;
            }

            var cells = line.Split('|');
            if (section is not { } handling || !line.StartsWith('|') || cells.Length < 4)
            {
                continue;
            }

            foreach (Match type in BackquotedType().Matches(cells[1]))
            {
                Assert.True(handling != Handling.Ignored || cells[2].Trim().Length > 0, $"{path}: '{type.Groups[1].Value}' is ignored without why");
                Assert.True(catalog.TryAdd(type.Groups[1].Value, handling), $"{path}: '{type.Groups[1].Value}' is listed twice");
            }
        }

        Assert.True(sections.Count == 0, $"{path} has no section {string.Join(", ", sections.Keys)}");
        return catalog;
    }

    [GeneratedRegex(@"`([a-z][a-z0-9.\-]*)`")]
    private static partial Regex BackquotedType();

    /// <summary>One session through everything a real run does, each step waiting for the events that end it.</summary>
    private sealed class DirectRun(HttpClient opencode, GlobalEventRecorder recorder, string directory)
    {
        private string _root = "";

        public async Task DriveAsync()
        {
            var session = await SendAsync(HttpMethod.Post, "session", new { title = "event catalog" });
            _root = session.GetProperty("id").GetString()!;
            var sessionDirectory = session.GetProperty("directory").GetString()!;

            await TurnAsync("hello tokens=20");
            await TurnAsync("think reasoning=5 tokens=5");
            // Compacted before any tool turn: the mock reads directives anywhere in the transcript it is asked to
            // summarise, and a tool= there makes it call a tool, which opencode refuses while summarising.
            await UntilIdleAfterAsync(() => SendAsync(HttpMethod.Post, $"session/{_root}/summarize", new { providerID = "mock", modelID = "mock-model" }));
            await recorder.WaitForAsync(e => e.Type == "session.compacted" && e.SessionId == _root, "session.compacted");
            await TurnAsync(TodoPrompt);
            await recorder.WaitForAsync(e => e.Type == "todo.updated" && e.SessionId == _root, "todo.updated");
            await TurnAsync("run it tool=bash", () => ReplyPermissionAsync(fromChild: false));
            await TurnAsync(AgentRunTests.SubagentPrompt, () => ReplyPermissionAsync(fromChild: true));
            await TurnAsync(AgentRunTests.QuestionPrompt, () => AnswerQuestionAsync("reply", new { answers = new[] { new[] { "Red" } } }));
            await TurnAsync(AgentRunTests.QuestionPrompt, () => AnswerQuestionAsync("reject", new { }));
            await TurnAsync(WritePrompt);
            await recorder.WaitForAsync(e => e.Type == "file.edited", "file.edited");
            await UntilIdleAfterAsync(() => SendAsync(HttpMethod.Post, $"session/{_root}/command", new { command = "review", arguments = "tokens=5" }));
            await recorder.WaitForAsync(e => e.Type == "command.executed" && e.SessionId == _root, "command.executed");

            // Aborted mid-answer, once text streams.
            var deltas = recorder.Count(IsDeltaOfRoot);
            await PromptAsync("answer tokens=500 delay=20");
            await recorder.WaitForAsync(IsDeltaOfRoot, "the answer streaming", deltas + 3);
            await SendAsync(HttpMethod.Post, $"session/{_root}/abort");
            await recorder.WaitForAsync(e => e.Type == "message.updated" && e.SessionId == _root
                && e.Properties.GetProperty("info").TryGetProperty("error", out var error)
                && error.GetProperty("name").GetString() == "MessageAbortedError", "the aborted answer");

            await SendAsync(HttpMethod.Delete, $"session/{_root}");
            await recorder.WaitForAsync(e => e.Type == "session.deleted" && e.SessionId == _root, "session.deleted");
            await SendAsync(HttpMethod.Post, "instance/dispose");
            await recorder.WaitForAsync(e => e.Type == "server.instance.disposed"
                && e.Properties.GetProperty("directory").GetString() == sessionDirectory, "server.instance.disposed");
        }

        private bool IsDeltaOfRoot(RecordedEvent e) => e.Type == "message.part.delta" && e.SessionId == _root;

        private async Task TurnAsync(string text, Func<Task>? whileRunning = null) =>
            await UntilIdleAfterAsync(async () =>
            {
                await PromptAsync(text);
                if (whileRunning is not null)
                {
                    await whileRunning();
                }
            });

        /// <summary>Runs <paramref name="start"/> and waits for the root's next <c>session.idle</c> (one per turn).</summary>
        private async Task UntilIdleAfterAsync(Func<Task> start)
        {
            bool IsIdle(RecordedEvent e) => e.Type == "session.idle" && e.SessionId == _root;
            var idles = recorder.Count(IsIdle);
            await start();
            await recorder.WaitForAsync(IsIdle, "the root session idle again", idles + 1);
        }

        private Task PromptAsync(string text) =>
            SendAsync(HttpMethod.Post, $"session/{_root}/prompt_async", new { parts = new[] { new { type = "text", text } } });

        /// <summary>Waits for a pending permission request of the root or of a subagent's session, then allows it once.</summary>
        private async Task ReplyPermissionAsync(bool fromChild)
        {
            var request = await PendingAsync("permission", r => (r.GetProperty("sessionID").GetString() != _root) == fromChild);
            await SendAsync(HttpMethod.Post, $"permission/{request.GetProperty("id").GetString()}/reply", new { reply = "once" });
        }

        private async Task AnswerQuestionAsync(string action, object body)
        {
            var request = await PendingAsync("question", r => r.GetProperty("sessionID").GetString() == _root);
            await SendAsync(HttpMethod.Post, $"question/{request.GetProperty("id").GetString()}/{action}", body);
        }

        /// <summary>
        /// A request that matches, asked (its event came) and not answered yet, as <c>GET /permission</c> or
        /// <c>GET /question</c> lists it.
        /// </summary>
        private async Task<JsonElement> PendingAsync(string kind, Func<JsonElement, bool> match)
        {
            string? id = null;
            await Eventually.HoldsAsync(() => (id = UnansweredRequest(kind, match)) is not null, $"{kind}.asked", StepTimeout);
            var pending = await SendAsync(HttpMethod.Get, kind);
            return Assert.Single(pending.EnumerateArray(), r => r.GetProperty("id").GetString() == id);
        }

        private string? UnansweredRequest(string kind, Func<JsonElement, bool> match)
        {
            var events = recorder.Events();
            var answered = events.Where(e => e.Type == $"{kind}.replied" || e.Type == $"{kind}.rejected")
                .Select(e => e.Properties.GetProperty("requestID").GetString()).ToHashSet();
            return events.Where(e => e.Type == $"{kind}.asked" && match(e.Properties))
                .Select(e => e.Properties.GetProperty("id").GetString()).FirstOrDefault(id => !answered.Contains(id));
        }

        private async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body = null)
        {
            using var request = new HttpRequestMessage(method, $"{path}?directory={Uri.EscapeDataString(directory)}");
            if (body is not null)
            {
                request.Content = JsonContent.Create(body);
            }

            using var response = await opencode.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{method} {path}: HTTP {(int)response.StatusCode} {text}");
            return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        }
    }

    private sealed record RecordedEvent(string Type, string? SessionId, JsonElement Properties, UpstreamEventKind Kind, string Line);

    /// <summary>opencode's <c>/global/event</c>, read raw: every data line, its payload's type and what the normalizer makes of it.</summary>
    private sealed class GlobalEventRecorder : IAsyncDisposable
    {
        private readonly HttpClient _http = new() { Timeout = Timeout.InfiniteTimeSpan };
        private readonly CancellationTokenSource _stop = new();
        private readonly Lock _gate = new();
        private readonly List<RecordedEvent> _events = [];
        private Task _reading = Task.CompletedTask;
        private Exception? _failure;

        public static async Task<GlobalEventRecorder> StartAsync(Uri baseUrl)
        {
            var recorder = new GlobalEventRecorder();
            recorder._reading = recorder.ReadAsync(new Uri(baseUrl, "global/event"));
            await recorder.WaitForAsync(e => e.Type == "server.connected", "server.connected");
            return recorder;
        }

        /// <summary>What came so far, in order; throws once reading the stream failed.</summary>
        public List<RecordedEvent> Events()
        {
            lock (_gate)
            {
                return _failure is null ? [.. _events] : throw new InvalidOperationException("reading /global/event failed", _failure);
            }
        }

        public int Count(Func<RecordedEvent, bool> match) => Events().Count(match);

        public Task WaitForAsync(Func<RecordedEvent, bool> match, string what, int count = 1) =>
            Eventually.HoldsAsync(() => Count(match) >= count, what, StepTimeout);

        private async Task ReadAsync(Uri url)
        {
            try
            {
                using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, _stop.Token);
                response.EnsureSuccessStatusCode();
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_stop.Token));
                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                {
                    if (line.StartsWith("data:", StringComparison.Ordinal))
                    {
                        var recorded = Record(line[5..].TrimStart());
                        lock (_gate)
                        {
                            _events.Add(recorded);
                        }
                    }
                }

                throw new IOException("opencode ended /global/event");
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                lock (_gate)
                {
                    _failure = e;
                }
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                // stopped by DisposeAsync
            }
        }

        private static RecordedEvent Record(string data)
        {
            var kind = OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes(data)).Kind;
            try
            {
                using var document = JsonDocument.Parse(data);
                var payload = document.RootElement.GetProperty("payload");
                var properties = payload.TryGetProperty("properties", out var p) ? p.Clone() : default;
                var sessionId = properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty("sessionID", out var s) ? s.GetString() : null;
                return new RecordedEvent(payload.GetProperty("type").GetString()!, sessionId, properties, kind, data);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return new RecordedEvent("(unreadable)", null, default, UpstreamEventKind.Malformed, data);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _reading;
            _http.Dispose();
            _stop.Dispose();
        }
    }
}
