using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Bench;

/// <summary>
/// What a real agent run costs a watcher (issue 17), on the real opencode: (1) a <c>bash</c> tool printing
/// <c>--lines</c> lines (opencode re-sends the whole tool part on each update): bytes received by a compact JSON, a
/// compact MessagePack and a full-form JSON watcher of the gateway, and by a direct subscriber of opencode's
/// <c>/global/event</c>, from the prompt to idle, against the final output's length; (2) the bytes of a snapshot join
/// after each of <c>--turns</c> turns of a session (the snapshot carries the newest <c>Gateway:Snapshots:MaxMessages</c>).
/// Arguments: <c>--oc-env</c>, <c>--gateway-dll</c>, <c>--gateway-port</c> (5496), <c>--log-dir</c>, <c>--lines</c>
/// (400), <c>--turns</c> (10,20,30,40,60).
/// </summary>
internal static class AgentRunScenario
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public static async Task<object> RunAsync(Args a)
    {
        var env = File.ReadAllLines(a.Get("oc-env")).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        var oc = new Uri(env["OC_BASE_URL"].TrimEnd('/') + "/");
        using var http = new HttpClient { BaseAddress = oc };
        await using var gw = await GatewayProcess.StartAsync(a.Get("gateway-dll"), a.Int("gateway-port", 5496), oc,
            Path.Combine(a.Get("log-dir", "."), "gateway-agent-run.log"), []);
        return new
        {
            toolOutput = await ToolOutputAsync(http, gw, a.Int("lines", 400)),
            snapshots = await SnapshotsAsync(http, gw, a.Ints("turns", "10,20,30,40,60")),
        };
    }

    private static GatewayHubClientOptions Watcher(string? events = null, bool messagePack = false) =>
        new() { ApiKey = GatewayProcess.ApiKey, ObserveWebSocket = true, Events = events, MessagePack = messagePack };

    private static async Task<string> CreateSessionAsync(HttpClient http, string title) =>
        (await (await http.PostAsJsonAsync("session", new { title })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

    private static async Task<object> ToolOutputAsync(HttpClient http, GatewayProcess gw, int lines)
    {
        var sid = await CreateSessionAsync(http, "bench tool output");
        (string Name, GatewayHubClientOptions Options)[] forms =
        [
            ("compact JSON", Watcher()), ("compact MessagePack", Watcher(messagePack: true)), ("full JSON", Watcher(EventForms.Full)),
        ];
        var watchers = new List<GatewayHubClient>();
        foreach (var (_, options) in forms)
        {
            var watcher = await GatewayHubClient.ConnectAsync(gw.HubUrl, options with { RecordEvents = false });
            await watcher.JoinAsync(new JoinRequest(sid));
            watchers.Add(watcher);
        }

        using var direct = new DirectSubscriber(http.BaseAddress!);
        await direct.StartAsync();
        var before = watchers.Select(w => w.BytesReceived).ToList();
        var directBefore = direct.Bytes;
        var clock = Stopwatch.StartNew();
        var command = $"for i in $(seq 1 {lines}); do echo \"line $i: lorem ipsum dolor sit amet, consectetur adipiscing elit\"; sleep 0.005; done";
        await PromptAsync(http, sid, $"run it tool=bash args={JsonSerializer.Serialize(new { command, description = "lines" })}");
        // The permission is answered at opencode itself: what is measured is what reaches the watchers.
        var permission = await PollAsync(async () => (await http.GetFromJsonAsync<JsonElement>("permission")).EnumerateArray()
            .Select(p => p.GetProperty("id").GetString()).FirstOrDefault(), "the permission request");
        (await http.PostAsJsonAsync($"permission/{permission}/reply", new { reply = "once" })).EnsureSuccessStatusCode();
        await IdleAsync(http, sid);
        await SettledAsync(() => watchers.Sum(w => w.BytesReceived));
        var elapsed = clock.Elapsed;

        var stored = await http.GetFromJsonAsync<JsonElement>($"session/{sid}/message");
        var tool = stored.EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()).Single(p => p.GetProperty("type").GetString() == "tool");
        var output = tool.GetProperty("state").GetProperty("output").GetString()!;
        var results = new List<object>();
        for (var i = 0; i < forms.Length; i++)
        {
            var bytes = watchers[i].BytesReceived - before[i];
            results.Add(new { form = forms[i].Name, bytes, perOutputChar = Math.Round((double)bytes / output.Length, 3) });
            await watchers[i].DisposeAsync();
        }

        var directBytes = direct.Bytes - directBefore;
        results.Add(new { form = "direct /global/event", bytes = directBytes, perOutputChar = Math.Round((double)directBytes / output.Length, 3) });
        return new { lines, outputChars = output.Length, toolPartUpdates = direct.ToolUpdates, seconds = Math.Round(elapsed.TotalSeconds, 1), watchers = results };
    }

    private static async Task<object> SnapshotsAsync(HttpClient http, GatewayProcess gw, int[] turns)
    {
        var sid = await CreateSessionAsync(http, "bench snapshot size");
        var sizes = new List<object>();
        for (var turn = 1; turn <= turns.Max(); turn++)
        {
            await PromptAsync(http, sid, $"turn {turn} tokens=40 delay=0");
            await PollAsync(async () => (await http.GetFromJsonAsync<JsonElement>($"session/{sid}/message")) is var stored
                && stored.GetArrayLength() == 2 * turn && stored[2 * turn - 1].GetProperty("info").GetProperty("time").TryGetProperty("completed", out _)
                    ? "done" : null, $"turn {turn}");
            await IdleAsync(http, sid);
            if (turns.Contains(turn))
            {
                await using var joiner = await GatewayHubClient.ConnectAsync(gw.HubUrl, Watcher() with { RecordEvents = false });
                var join = await joiner.JoinAsync(new JoinRequest(sid));
                var snapshot = join.GetProperty("snapshot");
                sizes.Add(new
                {
                    turns = turn, joinBytes = join.GetRawText().Length, messages = snapshot.GetProperty("messages").GetArrayLength(),
                    storedMessages = 2 * turn, hasEarlier = snapshot.TryGetProperty("earlier", out _),
                });
            }
        }

        return sizes;
    }

    private static async Task PromptAsync(HttpClient http, string sid, string text) =>
        (await http.PostAsJsonAsync($"session/{sid}/prompt_async", new { parts = new[] { new { type = "text", text } } })).EnsureSuccessStatusCode();

    /// <summary>opencode says the session is idle (absent from its status map).</summary>
    private static Task IdleAsync(HttpClient http, string sid) =>
        PollAsync(async () => (await http.GetFromJsonAsync<JsonElement>("session/status")).TryGetProperty(sid, out _) ? null : "idle", "idle");

    /// <summary>Until a count has not moved for half a second (the last events are on their way to the watchers).</summary>
    private static async Task SettledAsync(Func<long> count)
    {
        var last = -1L;
        while (count() != last)
        {
            last = count();
            await Task.Delay(500);
        }
    }

    private static async Task<string> PollAsync(Func<Task<string?>> probe, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            if (clock.Elapsed > Timeout)
            {
                throw new TimeoutException($"{what}: not within {Timeout.TotalSeconds} s");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>What an app without the gateway downloads: opencode's whole <c>/global/event</c> stream.</summary>
    private sealed class DirectSubscriber(Uri opencode) : IDisposable
    {
        private readonly HttpClient _http = new() { BaseAddress = opencode, Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        private readonly CancellationTokenSource _stop = new();
        private long _bytes;
        private int _toolUpdates;

        public long Bytes => Interlocked.Read(ref _bytes);
        public int ToolUpdates => Volatile.Read(ref _toolUpdates);

        public async Task StartAsync()
        {
            var response = await _http.GetAsync("global/event", HttpCompletionOption.ResponseHeadersRead, _stop.Token);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_stop.Token));
            var connected = new TaskCompletionSource();
            _ = Task.Run(async () =>
            {
                try
                {
                    while (await reader.ReadLineAsync(_stop.Token) is { } line)
                    {
                        Interlocked.Add(ref _bytes, System.Text.Encoding.UTF8.GetByteCount(line) + 1);
                        connected.TrySetResult();
                        if (line.Contains("\"message.part.updated\"", StringComparison.Ordinal) && line.Contains("\"type\":\"tool\"", StringComparison.Ordinal))
                        {
                            Interlocked.Increment(ref _toolUpdates);
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
            await connected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }

        public void Dispose()
        {
            _stop.Cancel();
            _http.Dispose();
        }
    }
}
