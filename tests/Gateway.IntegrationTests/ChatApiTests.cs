using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace OpencodeGateway.IntegrationTests;

/// <summary><c>/api/chat</c>, the SSE endpoint for clients that do not speak SignalR, on the real opencode.</summary>
[Collection(OpencodeCollection.Name)]
public sealed class ChatApiTests(OpencodeStack stack)
{
    /// <summary>
    /// What a client assembles, across every stream it reads: per part, <c>text = text[..offset] + delta</c>, gap marks
    /// (<c>gap</c> events; a <c>delta</c> with <c>gaps</c> restates them), and every id it was sent. It records each
    /// part's text right before every replacement (between replacements text only grows) for the prefix-or-gap check.
    /// </summary>
    private sealed class Assembled
    {
        private readonly List<(string PartId, string Text, int[] Gaps)> _shown = [];

        public SortedDictionary<string, string> Text { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, List<int>> Gaps { get; } = new(StringComparer.Ordinal);
        public string? SessionId { get; set; }
        public string? LastEventId { get; set; }
        public List<(long Epoch, long Seq)> Ids { get; } = [];
        public List<string> Types { get; } = [];
        /// <summary>Every event's type and data, in order.</summary>
        public List<(string Type, JsonElement Data)> Events { get; } = [];
        public bool Done => Types.LastOrDefault() == "done";

        public void Apply(SseItem<string> item)
        {
            Types.Add(item.EventType);
            if (item.EventId is { Length: > 0 } id)
            {
                LastEventId = id;
                var dash = id.IndexOf('-');
                Ids.Add((long.Parse(id[..dash]), long.Parse(id[(dash + 1)..])));
            }

            var data = JsonDocument.Parse(item.Data).RootElement;
            Events.Add((item.EventType, data));
            if (item.EventType == "session")
            {
                SessionId = data.GetProperty("sessionId").GetString();
            }
            else if (item.EventType == "delta" && data.GetProperty("type").GetString() == "text")
            {
                var partId = data.GetProperty("partId").GetString()!;
                var offset = data.GetProperty("offset").GetInt32();
                var current = Text.GetValueOrDefault(partId, "");
                Assert.True(offset <= current.Length, $"delta at {offset} beyond {current.Length}");
                if (offset < current.Length || data.TryGetProperty("gaps", out _))
                {
                    _shown.Add((partId, current, [.. GapsOf(partId)]));
                }

                Text[partId] = current[..offset] + data.GetProperty("delta").GetString();
                if (data.TryGetProperty("gaps", out var gaps))
                {
                    Gaps[partId] = [.. gaps.EnumerateArray().Select(g => g.GetInt32())];
                }
            }
            else if (item.EventType == "gap" && data.GetProperty("type").GetString() == "text")
            {
                var partId = data.GetProperty("partId").GetString()!;
                var gaps = Gaps.TryGetValue(partId, out var g) ? g : Gaps[partId] = [];
                gaps.Add(data.GetProperty("offset").GetInt32());
                gaps.Sort();
            }
        }

        public IReadOnlyList<int> GapsOf(string partId) => Gaps.TryGetValue(partId, out var gaps) ? gaps : [];

        public string Rendered => string.Join("\n", Text.Select(p => $"{p.Key}: {p.Value}"));

        /// <summary>Every moment's text of a part that is neither a prefix of its final text nor marked with gaps that explain it.</summary>
        public List<string> Violations(IReadOnlyDictionary<string, string> final) =>
            _shown.Concat(Text.Select(p => (PartId: p.Key, Text: p.Value, Gaps: GapsOf(p.Key).ToArray())))
                .Where(s => final.TryGetValue(s.PartId, out var f) && !TextInvariant.Holds(s.Text, s.Gaps, f))
                .Select(s => $"{s.PartId}: \"{s.Text}\" gaps [{string.Join(",", s.Gaps)}]").ToList();
    }

    /// <param name="onEvent">Called after each event is applied, before the next is read (e.g. to answer a request).</param>
    private static async Task ReadAsync(HttpResponseMessage response, Assembled into, Func<Assembled, bool> stopWhen,
        Func<Assembled, Task>? onEvent = null)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await using var stream = await response.Content.ReadAsStreamAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(timeout.Token))
        {
            into.Apply(item);
            if (onEvent is not null)
            {
                await onEvent(into);
            }

            if (into.Done || stopWhen(into))
            {
                return;
            }
        }
    }

    private async Task<Dictionary<string, string>> StoredTextsAsync(string sessionId) =>
        (await stack.StoredMessagesAsync(sessionId)).EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray())
            .Where(p => p.TryGetProperty("text", out _))
            .ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("text").GetString()!);

    private static HttpRequestMessage Resume(string sessionId, string? lastEventId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"api/chat?sessionId={sessionId}");
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is not null)
        {
            request.Headers.Add("Last-Event-ID", lastEventId);
        }

        return request;
    }

    private async Task<string> StoredAnswerAsync(string sessionId)
    {
        var stored = await stack.StoredMessagesAsync(sessionId);
        var last = stored.EnumerateArray().Last();
        Assert.Equal("assistant", last.GetProperty("info").GetProperty("role").GetString());
        return string.Join("\n", last.GetProperty("parts").EnumerateArray()
            .Where(p => p.GetProperty("type").GetString() == "text")
            .Select(p => $"{p.GetProperty("id").GetString()}: {p.GetProperty("text").GetString()}"));
    }

    /// <summary>The gateway in front of the real opencode, once it holds opencode's event stream (<c>/readyz</c>).</summary>
    private static Task<GatewayHost> StartGatewayAsync(Uri upstream) => GatewayHost.StartAsync(upstream);

    [Fact]
    public async Task A_stream_cut_mid_answer_and_resumed_with_Last_Event_ID_assembles_byte_identical_text()
    {
        await using var gateway = await StartGatewayAsync(stack.BaseUrl);
        using var http = gateway.HttpClient();
        var connectionsBefore = stack.GlobalEventConnections();

        var assembled = new Assembled();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "api/chat") { Content = JsonContent.Create(new { message = "hello tokens=300 delay=10" }) })
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await ReadAsync(response, assembled, a => a.Types.Count(t => t == "delta") >= 60);
        } // cut mid-answer

        Assert.False(assembled.Done);
        Assert.NotNull(assembled.SessionId);
        await Task.Delay(500); // more of the answer streams while nobody listens

        using (var resume = new HttpRequestMessage(HttpMethod.Get, $"api/chat?sessionId={assembled.SessionId}"))
        {
            resume.Headers.Accept.ParseAdd("text/event-stream");
            resume.Headers.Add("Last-Event-ID", assembled.LastEventId);
            using var response = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead);
            await ReadAsync(response, assembled, _ => false);
        }

        Assert.True(assembled.Done);
        var text = string.Join("\n", assembled.Text.Select(p => $"{p.Key}: {p.Value}"));
        Assert.Contains("t300 ", text, StringComparison.Ordinal);
        Assert.Equal(await StoredAnswerAsync(assembled.SessionId!), text);
        Assert.Equal(0, stack.GlobalEventConnections() - connectionsBefore); // no subscription of its own

        // The JSON view of the same session.
        var view = await http.GetFromJsonAsync<JsonElement>($"api/chat?sessionId={assembled.SessionId}");
        Assert.Equal(assembled.SessionId, view.GetProperty("session").GetProperty("id").GetString());
        Assert.Equal(2, view.GetProperty("messages").GetArrayLength());
    }

    [Fact]
    public async Task Ids_only_grow_and_every_id_sent_resumes_exactly_the_rest_even_right_after_a_resume()
    {
        await using var gateway = await StartGatewayAsync(stack.BaseUrl);
        using var http = gateway.HttpClient();
        var assembled = new Assembled();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "api/chat") { Content = JsonContent.Create(new { message = "hello tokens=600 delay=10" }) })
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await ReadAsync(response, assembled, a => a.Types.Count(t => t == "delta") >= 80);
        } // dropped after 80 deltas

        await Task.Delay(300); // the answer goes on meanwhile
        // Resume, and drop right after the first event of the resumed stream (it carries no id)…
        using (var resume = Resume(assembled.SessionId!, assembled.LastEventId))
        using (var response = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead))
        {
            var before = assembled.Types.Count;
            await ReadAsync(response, assembled, a => a.Types.Count == before + 1);
        }

        // …resume again, and drop right after the first event that carries an id…
        using (var resume = Resume(assembled.SessionId!, assembled.LastEventId))
        using (var response = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead))
        {
            var ids = assembled.Ids.Count;
            await ReadAsync(response, assembled, a => a.Ids.Count == ids + 1);
        }

        await Task.Delay(300);
        // …then resume from that id to the end.
        using (var resume = Resume(assembled.SessionId!, assembled.LastEventId))
        using (var response = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead))
        {
            await ReadAsync(response, assembled, _ => false);
        }

        Assert.True(assembled.Done);
        Assert.Contains("t600 ", assembled.Rendered, StringComparison.Ordinal);
        Assert.Equal(await StoredAnswerAsync(assembled.SessionId!), assembled.Rendered);
        for (var i = 1; i < assembled.Ids.Count; i++)
        {
            Assert.True(assembled.Ids[i].CompareTo(assembled.Ids[i - 1]) > 0, $"id {assembled.Ids[i]} after {assembled.Ids[i - 1]}");
        }

        Assert.Empty(assembled.Violations(await StoredTextsAsync(assembled.SessionId!)));
    }

    [Fact]
    public async Task Resuming_from_a_position_the_gateway_no_longer_has_restates_the_answer()
    {
        await using var gateway = await StartGatewayAsync(stack.BaseUrl);
        using var http = gateway.HttpClient();
        var assembled = new Assembled();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "api/chat") { Content = JsonContent.Create(new { message = "hello tokens=100 delay=5" }) })
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await ReadAsync(response, assembled, a => a.Types.Count(t => t == "delta") >= 10);
        }

        using var resume = new HttpRequestMessage(HttpMethod.Get, $"api/chat?sessionId={assembled.SessionId}&lastEventId=1-1");
        resume.Headers.Accept.ParseAdd("text/event-stream");
        using var resumed = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead);
        await ReadAsync(resumed, assembled, _ => false);
        Assert.True(assembled.Done);
        Assert.Equal(await StoredAnswerAsync(assembled.SessionId!), string.Join("\n", assembled.Text.Select(p => $"{p.Key}: {p.Value}")));
    }

    [Fact]
    public async Task A_subagents_permission_is_a_permission_event_with_its_session_restated_on_resume_and_answered_through_the_sessions_route()
    {
        await using var gateway = await StartGatewayAsync(stack.BaseUrl);
        using var http = gateway.HttpClient();
        var assembled = new Assembled();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "api/chat") { Content = JsonContent.Create(new { message = AgentRunTests.SubagentPrompt }) })
        using (var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await ReadAsync(response, assembled, a => a.Types.Contains("permission"));
        } // cut while the run waits

        var sessionId = assembled.SessionId!;
        var asked = assembled.Events.Single(e => e.Type == "permission").Data;
        var requestId = asked.GetProperty("requestId").GetString()!;
        var child = asked.GetProperty("childSessionId").GetString()!;
        Assert.NotEqual(sessionId, child);
        Assert.Equal(child, asked.GetProperty("request").GetProperty("sessionID").GetString());

        // A resume from a position the gateway restates from a snapshot shows the pending request again.
        var restated = new Assembled();
        using (var resume = Resume(sessionId, "1-1"))
        using (var response = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead))
        {
            await ReadAsync(response, restated, a => a.Types.Contains("permission"));
        }

        var again = restated.Events.Single(e => e.Type == "permission").Data;
        Assert.Equal((requestId, child), (again.GetProperty("requestId").GetString(), again.GetProperty("childSessionId").GetString()));

        using (var resume = Resume(sessionId, assembled.LastEventId))
        using (var response = await http.SendAsync(resume, HttpCompletionOption.ResponseHeadersRead))
        {
            var reply = await http.PostAsJsonAsync($"api/sessions/{sessionId}/permissions/{requestId}", new { reply = "once" });
            Assert.Equal(HttpStatusCode.NoContent, reply.StatusCode);
            await ReadAsync(response, assembled, _ => false);
        }

        Assert.True(assembled.Done);
        var replied = assembled.Events.Single(e => e.Type == "permission-replied").Data;
        Assert.Equal((requestId, "once", child), (replied.GetProperty("requestId").GetString(), replied.GetProperty("reply").GetString(),
            replied.GetProperty("childSessionId").GetString()));
        Assert.Equal(await StoredAnswerAsync(sessionId), assembled.Rendered);
    }

    [Fact]
    public async Task A_question_is_a_question_event_answered_or_dismissed_through_the_sessions_routes()
    {
        await using var gateway = await StartGatewayAsync(stack.BaseUrl);
        using var http = gateway.HttpClient();
        var created = await http.PostAsJsonAsync("api/sessions", new { title = "questions" });
        var sessionId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("session").GetProperty("sessionId").GetString()!;

        foreach (var (route, body, expected) in new[] { ("reply", (object?)new { answers = new[] { new[] { "Red" } } }, "question-replied"), ("reject", null, "question-rejected") })
        {
            var assembled = new Assembled();
            using var request = new HttpRequestMessage(HttpMethod.Post, "api/chat") { Content = JsonContent.Create(new { message = AgentRunTests.QuestionPrompt, sessionId }) };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            string? requestId = null;
            await ReadAsync(response, assembled, _ => false, async a =>
            {
                if (requestId is null && a.Events[^1] is ("question", var asked))
                {
                    Assert.False(asked.TryGetProperty("childSessionId", out _));
                    Assert.Equal("Which color?", asked.GetProperty("request").GetProperty("questions")[0].GetProperty("question").GetString());
                    requestId = asked.GetProperty("requestId").GetString()!;
                    var answered = await http.PostAsync($"api/sessions/{sessionId}/questions/{requestId}/{route}", body is null ? null : JsonContent.Create(body));
                    Assert.Equal(HttpStatusCode.NoContent, answered.StatusCode);
                }
            });

            Assert.True(assembled.Done);
            var outcome = assembled.Events.Single(e => e.Type == expected).Data;
            Assert.Equal(requestId, outcome.GetProperty("requestId").GetString());
            if (route == "reply")
            {
                Assert.Equal("""[["Red"]]""", outcome.GetProperty("answers").GetRawText());
                Assert.Contains(assembled.Events, e => e.Type == "tool" && e.Data.GetProperty("tool").GetString() == "question"
                    && e.Data.GetProperty("status").GetString() == "completed");
            }
            else
            {
                Assert.Contains(assembled.Events, e => e.Type == "tool" && e.Data.GetProperty("tool").GetString() == "question"
                    && e.Data.GetProperty("status").GetString() == "error");
            }
        }
    }

    [Fact]
    public async Task Bad_requests_get_problem_details_with_a_code()
    {
        await using var gateway = await StartGatewayAsync(stack.BaseUrl);
        using var http = gateway.HttpClient();

        var empty = await http.PostAsJsonAsync("api/chat", new { message = "" });
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Equal("application/problem+json", empty.Content.Headers.ContentType?.MediaType);
        var problem = await empty.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("bad_request", problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("errors").TryGetProperty("message", out _));

        var unknown = await http.PostAsJsonAsync("api/chat", new { message = "hi", sessionId = "ses_doesnotexist" });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal("session_not_found", (await unknown.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("code").GetString());

        var badId = await http.GetAsync("api/chat?sessionId=../etc");
        Assert.Equal(HttpStatusCode.BadRequest, badId.StatusCode);

        var created = await http.PostAsJsonAsync("api/sessions", new { title = "mine" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var mine = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("session").GetProperty("sessionId").GetString();
        using var badResume = new HttpRequestMessage(HttpMethod.Get, $"api/chat?sessionId={mine}&lastEventId=garbage");
        badResume.Headers.Accept.ParseAdd("text/event-stream");
        var badResumeResponse = await http.SendAsync(badResume);
        Assert.Equal(HttpStatusCode.BadRequest, badResumeResponse.StatusCode);
        Assert.True((await badResumeResponse.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("Last-Event-ID", out _));

        // Unauthenticated: refused. Another user's session: as if it did not exist.
        using var anonymous = gateway.HttpClient(userId: null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync("api/chat", new { message = "hi" })).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"api/chat?sessionId={mine}")).StatusCode);
        using var mallory = gateway.HttpClient("mallory");
        var foreign = await mallory.PostAsJsonAsync("api/chat", new { message = "hi", sessionId = mine });
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Equal("session_not_found", (await foreign.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("code").GetString());
        using var foreignResume = new HttpRequestMessage(HttpMethod.Get, $"api/chat?sessionId={mine}&lastEventId=1-1");
        foreignResume.Headers.Accept.ParseAdd("text/event-stream");
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.SendAsync(foreignResume)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await mallory.GetAsync($"api/chat?sessionId={mine}")).StatusCode);
    }
}
