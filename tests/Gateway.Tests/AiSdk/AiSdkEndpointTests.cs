using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Sessions;
using OpencodeGateway.Testing;

namespace Gateway.Tests.AiSdk;

/// <summary>
/// <c>POST /api/ai-sdk/chat</c> in front of a fake opencode: attachments up to the limit get through whatever the
/// server's own body limit, bigger bodies and bad attachments are refused with problem details naming the UI message's
/// field, and a POST that continues the app's copy of an answer sends its approval and streams on from that copy.
/// </summary>
public sealed class AiSdkEndpointTests : IAsyncLifetime
{
    private const string Api = "api/ai-sdk/chat";
    private GatewayHost _host = null!;
    private HttpClient _alice = null!;

    public async Task InitializeAsync()
    {
        _host = await GatewayHost.StartAsync();
        _alice = _host.HttpClient("alice");
    }

    public async Task DisposeAsync()
    {
        _alice.Dispose();
        await _host.DisposeAsync();
    }

    private static string Send(string chatId, params object[] parts) => JsonSerializer.Serialize(new
    {
        id = chatId, trigger = "submit-message", messages = new[] { new { id = "m1", role = "user", parts } },
    });

    private static object File(int bytes, string mediaType = "image/png") =>
        new { type = "file", mediaType, filename = "shot.png", url = $"data:{mediaType};base64,{Convert.ToBase64String(new byte[bytes])}" };

    private async Task<HttpResponseMessage> PostAsync(string body, HttpClient? client = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Api) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        return await (client ?? _alice).SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code, string field)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{response.StatusCode}: {body}");
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), body);
    }

    [Fact]
    public async Task An_attachment_at_the_limit_is_sent_even_past_the_servers_default_body_limit()
    {
        // 23 MiB decoded: its base64 passes Kestrel's default 30 MB body limit, which the route lifts to its own.
        const int attachment = 23 * 1024 * 1024;
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["Gateway:Prompts:MaxAttachmentBytes"] = attachment.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        });
        using var alice = host.HttpClient("alice");

        using var response = await PostAsync(Send("chat-big", File(attachment), new { type = "text", text = "look" }), alice);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Single(host.Upstream.Prompts);
    }

    [Fact]
    public async Task A_body_past_the_limit_is_refused_by_its_declared_length_and_a_chunked_one_as_it_arrives()
    {
        var limit = AiSdkEndpoints.MaxSendBodyBytes(new PromptOptions());
        var body = Send("chat-x", new { type = "text", text = new string('x', (int)limit) });

        await AssertProblemAsync(await PostAsync(body), HttpStatusCode.RequestEntityTooLarge, "payload_too_large", "body");

        using var chunked = new HttpRequestMessage(HttpMethod.Post, Api)
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(body))) { Headers = { ContentType = new("application/json") } },
        };
        chunked.Headers.TransferEncodingChunked = true;
        await AssertProblemAsync(await _alice.SendAsync(chunked), HttpStatusCode.RequestEntityTooLarge, "payload_too_large", "body");
        Assert.Empty(_host.Upstream.Prompts);
    }

    [Fact]
    public async Task Bad_attachments_are_refused_naming_the_ui_parts_field_and_create_no_session()
    {
        await AssertProblemAsync(await PostAsync(Send("chat-1", new { type = "text", text = "hi" },
            new { type = "file", mediaType = "image/png", url = "https://example.com/a.png" })), HttpStatusCode.BadRequest, "bad_request", "messages[0].parts[1].url");
        await AssertProblemAsync(await PostAsync(Send("chat-1", new { type = "file", mediaType = "not a type", url = "data:x;base64,aGk=" })),
            HttpStatusCode.BadRequest, "bad_request", "messages[0].parts[0].mediaType");
        await AssertProblemAsync(await PostAsync(Send("chat-1", new { type = "text", text = "" }, File((int)new PromptOptions().MaxAttachmentBytes + 1))),
            HttpStatusCode.RequestEntityTooLarge, "payload_too_large", "messages[0].parts[1].url");

        Assert.Equal(0, (await _alice.GetFromJsonAsync<JsonElement>("api/sessions")).GetProperty("items").GetArrayLength());
        Assert.Empty(_host.Upstream.Prompts);
    }

    [Fact]
    public async Task An_answer_whose_approval_was_given_is_sent_to_opencode_and_continued_from_the_apps_copy()
    {
        var sessionId = await SessionWaitingForApprovalAsync("per_1", "call_1");
        var body = JsonSerializer.Serialize(new
        {
            id = sessionId, trigger = "submit-message", messageId = "msg_2",
            messages = new object[]
            {
                new { id = "msg_1", role = "user", parts = new[] { new { type = "text", text = "run it" } } },
                new
                {
                    id = "msg_2", role = "assistant", parts = new object[]
                    {
                        new { type = "step-start" },
                        new
                        {
                            type = "dynamic-tool", toolName = "bash", toolCallId = "call_1", state = "approval-responded", providerExecuted = true,
                            input = new { command = "ls" }, approval = new { id = "per_1", approved = true },
                        },
                    },
                },
            },
        });

        using var response = await PostAsync(body);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        Assert.Equal(["per_1"], _host.Upstream.PermissionReplies);
        var chunks = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Select(e => e["data: ".Length..]).Where(d => d != "[DONE]").Select(d => JsonDocument.Parse(d).RootElement).ToList();
        Assert.Equal(["start", "reset-step", "tool-input-start", "tool-input-available", "tool-approval-request", "tool-approval-response"],
            chunks.Take(6).Select(c => c.GetProperty("type").GetString()));
        Assert.Equal("msg_2", chunks[0].GetProperty("messageId").GetString());
        Assert.True(chunks[5].GetProperty("approved").GetBoolean());
        Assert.Equal("finish", chunks[^1].GetProperty("type").GetString());
    }

    [Fact]
    public async Task The_permission_route_answers_once_the_sessions_events_show_the_reply_so_a_resume_right_after_goes_on()
    {
        var sessionId = await SessionWaitingForApprovalAsync("per_1", "call_1");
        using var content = new StringContent("""{"reply":"once"}""", Encoding.UTF8, "application/json");

        var answering = _alice.PostAsync($"{Api}/{sessionId}/permissions/per_1", content);
        await Eventually.HoldsAsync(() => _host.Upstream.PermissionReplies.Contains("per_1"), "the reply sent to opencode", TimeSpan.FromSeconds(10));
        await Task.Delay(300);
        Assert.False(answering.IsCompleted, "answered before the reply showed in the session's events");

        _host.Upstream.Emit("permission.replied", new { sessionID = sessionId, requestID = "per_1", reply = "once" });

        Assert.Equal(HttpStatusCode.NoContent, (await answering.WaitAsync(TimeSpan.FromSeconds(5))).StatusCode);
    }

    [Fact]
    public async Task A_new_message_while_the_answer_waits_for_the_user_is_refused_as_a_conflict_and_not_sent()
    {
        var sessionId = await SessionWaitingForApprovalAsync("per_1", "call_1");

        await AssertProblemAsync(await PostAsync(Send(sessionId, new { type = "text", text = "something else" })), HttpStatusCode.Conflict,
            "conflict", "messages[0].role");
        Assert.Empty(_host.Upstream.Prompts);
    }

    [Fact]
    public async Task An_answer_that_is_not_the_chats_latest_is_refused_as_a_conflict_and_nothing_is_answered()
    {
        var sessionId = await SessionWaitingForApprovalAsync("per_1", "call_1");
        var body = JsonSerializer.Serialize(new
        {
            id = sessionId, trigger = "submit-message",
            messages = new object[]
            {
                new
                {
                    id = "msg_0", role = "assistant", parts = new object[]
                    {
                        new
                        {
                            type = "dynamic-tool", toolName = "bash", toolCallId = "call_1", state = "approval-responded", input = new { },
                            approval = new { id = "per_1", approved = true },
                        },
                    },
                },
            },
        });

        await AssertProblemAsync(await PostAsync(body), HttpStatusCode.Conflict, "conflict", "messages[0].id");
        Assert.Empty(_host.Upstream.PermissionReplies);
    }

    [Fact]
    public async Task A_question_the_app_answered_is_replied_and_answers_it_cannot_take_are_refused_naming_the_output()
    {
        var sessionId = await SessionWaitingForApprovalAsync("per_1", "call_1");
        _host.Upstream.Questions.Add(new JsonObject
        {
            ["id"] = "que_1", ["sessionID"] = sessionId,
            ["questions"] = new JsonArray(new JsonObject { ["question"] = "Which color?", ["header"] = "Color", ["options"] = new JsonArray() }),
            ["tool"] = new JsonObject { ["messageID"] = "msg_2", ["callID"] = "call_1" },
        });
        string Answered(object output) => JsonSerializer.Serialize(new
        {
            id = sessionId, trigger = "submit-message",
            messages = new object[]
            {
                new
                {
                    id = "msg_2", role = "assistant", parts = new object[]
                    {
                        new { type = "step-start" },
                        new
                        {
                            type = "dynamic-tool", toolName = "question", toolCallId = "call_1", state = "output-available", input = new { }, output,
                            callProviderMetadata = new { opencode = new { requestId = "que_1" } },
                        },
                    },
                },
            },
        });

        await AssertProblemAsync(await PostAsync(Answered(new { answers = "Red" })), HttpStatusCode.BadRequest, "bad_request", "messages[0].parts[1].output.answers");
        await AssertProblemAsync(await PostAsync(Answered(new { answers = new[] { new[] { "" } } })), HttpStatusCode.BadRequest, "bad_request",
            "messages[0].parts[1].output.answers[0][0]");
        Assert.Empty(_host.Upstream.QuestionAnswers);

        using var response = await PostAsync(Answered(new { answers = new[] { new[] { "Red" } } }));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["reply que_1 [[\"Red\"]]"], _host.Upstream.QuestionAnswers);
    }

    /// <summary>A session of alice's whose answer (<c>msg_2</c>, after the user's <c>msg_1</c>: opencode's ids grow) has a bash call waiting for permission <paramref name="requestId"/>.</summary>
    private async Task<string> SessionWaitingForApprovalAsync(string requestId, string callId)
    {
        var created = await _alice.PostAsJsonAsync("api/sessions", new { title = "t" });
        var sessionId = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("session").GetProperty("sessionId").GetString()!;
        _host.Upstream.AddSession(sessionId,
            JsonSerializer.SerializeToElement(new
            {
                info = new { id = "msg_1", sessionID = sessionId, role = "user" },
                parts = new[] { new { id = "prt_u", type = "text", text = "run it" } },
            }),
            JsonSerializer.SerializeToElement(new
            {
                info = new { id = "msg_2", sessionID = sessionId, role = "assistant" },
                parts = new object[]
                {
                    new { id = "prt_s", type = "step-start" },
                    new { id = "prt_t", type = "tool", tool = "bash", callID = callId, state = new { status = "running", input = new { command = "ls" } } },
                },
            }));
        _host.Upstream.Permissions.Add(new JsonObject
        {
            ["id"] = requestId, ["sessionID"] = sessionId, ["permission"] = "bash",
            ["tool"] = new JsonObject { ["messageID"] = "msg_2", ["callID"] = callId },
        });
        return sessionId;
    }
}
