using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using OpencodeGateway.Streaming;
using OpencodeGateway.Testing;

namespace OpencodeGateway.IntegrationTests;

/// <summary><c>/api/chat</c>, the SSE endpoint for clients that do not speak SignalR, on the real opencode.</summary>
[Collection(OpencodeCollection.Name)]
public sealed class ChatApiTests(OpencodeStack stack)
{
    /// <summary>What a client assembles: per part, <c>text = text[..offset] + delta</c>.</summary>
    private sealed class Assembled
    {
        public SortedDictionary<string, string> Text { get; } = new(StringComparer.Ordinal);
        public string? SessionId { get; set; }
        public string? LastEventId { get; set; }
        public List<string> Types { get; } = [];
        public bool Done => Types.LastOrDefault() == "done";

        public void Apply(SseItem<string> item)
        {
            Types.Add(item.EventType);
            if (item.EventId is { Length: > 0 } id)
            {
                LastEventId = id;
            }

            var data = JsonDocument.Parse(item.Data).RootElement;
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
                Text[partId] = current[..offset] + data.GetProperty("delta").GetString();
            }
        }
    }

    private static async Task ReadAsync(HttpResponseMessage response, Assembled into, Func<Assembled, bool> stopWhen)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await using var stream = await response.Content.ReadAsStreamAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(timeout.Token))
        {
            into.Apply(item);
            if (into.Done || stopWhen(into))
            {
                return;
            }
        }
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

    private static async Task<GatewayHost> StartGatewayAsync(Uri upstream)
    {
        var gateway = await GatewayHost.StartAsync(upstream);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!gateway.Get<UpstreamStreamState>().IsConnected("local"))
        {
            Assert.True(DateTime.UtcNow < deadline, "no upstream stream");
            await Task.Delay(50);
        }

        return gateway;
    }

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
