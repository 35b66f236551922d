using System.Text.Json;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Contracts;

namespace Gateway.Tests.AiSdk;

/// <summary>
/// <c>GET /api/ai-sdk/chat/{id}/messages</c>'s <c>UIMessage[]</c>: attachments as file parts, and what the newest
/// answer waits for shown as the stream shows it, so that a reloaded page can answer it.
/// </summary>
public sealed class UiMessageHistoryTests
{
    private const string Root = "ses_root";

    [Fact]
    public void A_user_messages_attachments_are_file_parts_and_opencodes_synthetic_text_is_left_out()
    {
        var history = UiMessageHistory.From([User(
            """{"id":"prt_1","type":"text","text":"what is this?"}""",
            """{"id":"prt_2","type":"text","text":"Called the Read tool","synthetic":true}""",
            """{"id":"prt_3","type":"file","mime":"image/png","filename":"shot.png","url":"data:image/png;base64,iVBORw0KGgo="}""",
            """{"id":"prt_4","type":"file","mime":"text/plain","url":"data:text/plain;base64,aGk="}""")], pending: null);

        Assert.Equal(
            """[{"type":"text","text":"what is this?"},{"type":"file","mediaType":"image/png","url":"data:image/png;base64,iVBORw0KGgo=","filename":"shot.png"},{"type":"file","mediaType":"text/plain","url":"data:text/plain;base64,aGk="}]""",
            JsonSerializer.Serialize(Assert.Single(history)["parts"], UiMessageChunk.JsonOptions));
    }

    [Fact]
    public void The_newest_answer_shows_its_pending_approvals_and_questions_where_the_stream_does()
    {
        var messages = new[]
        {
            User("""{"id":"prt_u","type":"text","text":"go"}"""),
            Assistant("msg_a",
                """{"id":"prt_s","type":"step-start"}""",
                """{"id":"prt_b","type":"tool","tool":"bash","callID":"call_b","state":{"status":"running","input":{"command":"ls"}}}""",
                """{"id":"prt_q","type":"tool","tool":"question","callID":"call_q","state":{"status":"running","input":{"questions":[]}}}""",
                """{"id":"prt_t","type":"tool","tool":"task","callID":"call_t","state":{"status":"running","input":{},"metadata":{"sessionId":"ses_child"}}}"""),
        };
        var snapshot = Snapshot() with
        {
            Permissions = [Json("""{"id":"per_1","sessionID":"ses_root","permission":"bash","tool":{"messageID":"msg_a","callID":"call_b"}}"""),
                Json("""{"id":"per_2","sessionID":"ses_grand","permission":"bash","tool":{"messageID":"msg_g","callID":"call_g"}}""")],
            Questions = [Json("""{"id":"que_1","sessionID":"ses_root","questions":[{"question":"Which?","header":"H","options":[]}],"tool":{"messageID":"msg_a","callID":"call_q"}}"""),
                Json("""{"id":"que_2","sessionID":"ses_child","questions":[{"question":"Sub?","header":"S","options":[]}]}""")],
            Children = [new ChildSession("ses_child", Root, "sub", Json("""{"type":"busy"}""")), new ChildSession("ses_grand", "ses_child", "subsub", Json("""{"type":"busy"}"""))],
        };

        var answer = JsonSerializer.SerializeToElement(UiMessageHistory.From(messages, snapshot), UiMessageChunk.JsonOptions)[1];

        var parts = answer.GetProperty("parts").EnumerateArray().ToList();
        Assert.Equal("msg_a", answer.GetProperty("id").GetString());
        var bash = parts.Single(p => p.TryGetProperty("toolCallId", out var id) && id.GetString() == "call_b");
        Assert.Equal(("approval-requested", "per_1"), (bash.GetProperty("state").GetString(), bash.GetProperty("approval").GetProperty("id").GetString()));
        var task = parts.Single(p => p.TryGetProperty("toolCallId", out var id) && id.GetString() == "call_t");
        Assert.Equal(("approval-requested", "per_2"), (task.GetProperty("state").GetString(), task.GetProperty("approval").GetProperty("id").GetString()));
        var question = parts.Single(p => p.TryGetProperty("toolCallId", out var id) && id.GetString() == "call_q");
        Assert.Equal(("input-available", false, "que_1"), (question.GetProperty("state").GetString(), question.GetProperty("providerExecuted").GetBoolean(),
            question.GetProperty("callProviderMetadata").GetProperty("opencode").GetProperty("requestId").GetString()));
        Assert.Equal("Which?", question.GetProperty("input").GetProperty("questions")[0].GetProperty("question").GetString());
        var own = parts.Single(p => p.TryGetProperty("toolCallId", out var id) && id.GetString() == "que_2");
        Assert.Equal(("question", "input-available", "ses_child"), (own.GetProperty("toolName").GetString(), own.GetProperty("state").GetString(),
            own.GetProperty("callProviderMetadata").GetProperty("opencode").GetProperty("childSessionId").GetString()));
        var data = parts.Where(p => p.GetProperty("type").GetString() == UiChunkTypes.DataPermission).Select(p => p.GetProperty("data")).ToList();
        Assert.Equal(["call_b", "call_t"], data.Select(d => d.GetProperty("toolCallId").GetString()));
        Assert.Equal("ses_grand", data[1].GetProperty("childSessionId").GetString());
        Assert.False(data[0].TryGetProperty("childSessionId", out _));
    }

    [Fact]
    public void A_page_of_earlier_messages_shows_no_pending_request()
    {
        var history = UiMessageHistory.From([User("""{"id":"prt_u","type":"text","text":"go"}"""),
            Assistant("msg_a", """{"id":"prt_b","type":"tool","tool":"bash","callID":"call_b","state":{"status":"running","input":{}}}""")], pending: null);

        var tool = Assert.Single((List<Dictionary<string, object?>>)history[1]["parts"]!);
        Assert.Equal("input-available", tool["state"]);
        Assert.False(tool.ContainsKey("approval"));
    }

    private static MessageWithParts User(params string[] parts) =>
        new(Json("""{"id":"msg_u","role":"user"}"""), [.. parts.Select(Json)]);

    private static MessageWithParts Assistant(string id, params string[] parts) =>
        new(Json($$"""{"id":"{{id}}","role":"assistant"}"""), [.. parts.Select(Json)]);

    private static SessionSnapshot Snapshot() => new()
    {
        Upstream = "local", SessionId = Root, Epoch = 1, Seq = 0, Session = Json("{}"), Messages = [],
        Status = Json("""{"type":"busy"}"""), Permissions = [],
    };

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
