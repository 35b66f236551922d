using System.Net;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Api;

/// <summary>
/// Input that cannot be stored or passed on (text with a lone surrogate, which JSON's <c>\ud800</c> escape carries) is
/// refused with a 400 problem naming the field, and nothing changes: no record, no call to opencode.
/// </summary>
public sealed class BadInputTests : IAsyncLifetime
{
    private const string LoneSurrogate = "\\ud800";
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static StringContent Json(string json, string mediaType = "application/json") => new(json, Encoding.UTF8, mediaType);

    private static async Task AssertBadRequestAsync(HttpResponseMessage response, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal("bad_request", problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), body);
    }

    [Fact]
    public async Task Text_with_a_lone_surrogate_is_refused_everywhere_and_changes_nothing()
    {
        using var http = _host.HttpClient("alice");
        var created = await http.PostAsync("/api/sessions", Json("""{"title":"good"}"""));
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("session").GetProperty("sessionId").GetString()!;
        var sessionsBefore = _host.Upstream.Requests.Count(r => r == "POST /session");

        await AssertBadRequestAsync(await http.PatchAsync($"/api/sessions/{id}", Json($$"""{"title":"x{{LoneSurrogate}}"}""")), "title");
        await AssertBadRequestAsync(await http.PatchAsync($"/api/sessions/{id}", Json($$"""{"tags":["a{{LoneSurrogate}}"]}""")), "tags[0]");
        await AssertBadRequestAsync(await http.PatchAsync($"/api/sessions/{id}",
            Json($$$"""{"metadata":{"k{{{LoneSurrogate}}}":1}}""", "application/merge-patch+json")), "metadata");
        await AssertBadRequestAsync(await http.PostAsync("/api/sessions", Json($$$"""{"title":"new","metadata":{"k":"v{{{LoneSurrogate}}}"}}""")), "metadata");
        Assert.Equal(sessionsBefore, _host.Upstream.Requests.Count(r => r == "POST /session"));
        Assert.DoesNotContain(_host.Upstream.Requests, r => r.StartsWith("PATCH", StringComparison.Ordinal));
        var record = JsonDocument.Parse(await http.GetStringAsync($"/api/sessions/{id}")).RootElement.GetProperty("session");
        Assert.Equal("good", record.GetProperty("title").GetString());

    }

    [Fact]
    public async Task Api_chat_bounds_its_body_and_answers_every_refusal_with_a_problem_and_no_session_created()
    {
        using var http = _host.HttpClient("alice");
        var sessionsBefore = _host.Upstream.Requests.Count(r => r == "POST /session");

        // Bigger than any prompt: a declared length is refused unread (the client waits for 100-continue and never
        // sends its 10 MB), a streamed body as soon as it passes the bound.
        using (var declared = new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = Json($$"""{"message":"{{new string('x', 10 * 1024 * 1024)}}"}""") })
        {
            declared.Headers.ExpectContinue = true;
            await AssertProblemAsync(await http.SendAsync(declared), HttpStatusCode.RequestEntityTooLarge, "body");
        }

        var justOver = new string('x', (int)OpencodeGateway.Chat.ChatEndpoints.MaxBodyBytes + 10_000);
        using (var streamed = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes($$"""{"message":"{{justOver}}"}"""))))
        {
            streamed.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/chat") { Content = streamed };
            request.Headers.TransferEncodingChunked = true;
            await AssertProblemAsync(await http.SendAsync(request), HttpStatusCode.RequestEntityTooLarge, "body");
        }

        await AssertProblemAsync(await http.PostAsync("/api/chat", Json("""{"message":""")), HttpStatusCode.BadRequest, "body");
        await AssertProblemAsync(await http.PostAsync("/api/chat", Json("""{"message":"   "}""")), HttpStatusCode.BadRequest, "message");
        await AssertProblemAsync(await http.PostAsync("/api/chat", Json("""{"message":5}""")), HttpStatusCode.BadRequest, "message");
        await AssertProblemAsync(await http.PostAsync("/api/chat", Json($$"""{"message":"a{{LoneSurrogate}}"}""")), HttpStatusCode.BadRequest, "message");
        await AssertProblemAsync(await http.PostAsync("/api/chat", Json("""{"message":"hi","sessionId":"../x"}""")), HttpStatusCode.BadRequest, "sessionId");
        await AssertProblemAsync(await http.PostAsync("/api/chat", Json("""{"message":"hi"}""", "text/plain")), HttpStatusCode.BadRequest, "body");
        await AssertProblemAsync(await http.PostAsync("/api/chat", new StringContent("")), HttpStatusCode.BadRequest, "body");

        Assert.Equal(sessionsBefore, _host.Upstream.Requests.Count(r => r == "POST /session"));
        Assert.Empty(_host.Upstream.Prompts);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), body);
    }
}
