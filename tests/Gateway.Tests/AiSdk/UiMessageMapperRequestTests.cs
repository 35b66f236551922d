using System.Text.Json;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Contracts;

namespace Gateway.Tests.AiSdk;

/// <summary>
/// What a run waits for, in the UI message stream: permission requests as tool approvals (the session's own on their
/// tool call, a subagent's on the tool call that runs it), questions as tool parts the app answers, the stream ending
/// while they wait, and the stream that continues the app's copy of the answer after it answered.
/// </summary>
public sealed class UiMessageMapperRequestTests
{
    private const string Root = "ses_root";
    private long _seq;

    [Fact]
    public void A_permission_request_is_an_approval_on_its_tool_call_and_the_stream_waits_for_it()
    {
        // opencode asks before it shows the call running: the approval waits for the call's input.
        var (mapper, chunks) = Start(StepStart(), Tool("call_1", "bash", "pending"), PermissionAsked("per_1", "call_1"));
        Assert.False(mapper.WaitingForUser);
        Assert.DoesNotContain(chunks, c => c.Type == UiChunkTypes.ToolApprovalRequest);

        Apply(mapper, chunks, Tool("call_1", "bash", "running"));

        Assert.True(mapper.WaitingForUser);
        var message = UiMessageModel.Fold(chunks);
        var tool = message.Tool("call_1");
        Assert.Equal(("approval-requested", "per_1"), (tool.State, tool.ApprovalId));
        var data = Assert.IsType<UiMessageMapper.PermissionData>(message.Parts.Single(p => p.Type == UiChunkTypes.DataPermission).Data);
        Assert.Equal(("per_1", "pending", "call_1", null), (data.RequestId, data.Status, data.ToolCallId, data.ChildSessionId));
        var finish = new List<UiMessageChunk>();
        mapper.Finish(finish);
        Assert.Equal("tool-calls", finish.Single().FinishReason);

        Apply(mapper, chunks, PermissionReplied("per_1", "once"), Tool("call_1", "bash", "completed", output: "done\n"));

        Assert.False(mapper.WaitingForUser);
        message = UiMessageModel.Fold(chunks);
        Assert.Equal(("output-available", true), (message.Tool("call_1").State, message.Tool("call_1").Approved));
        Assert.Equal("once", ((UiMessageMapper.PermissionData)message.Parts.Single(p => p.Type == UiChunkTypes.DataPermission).Data!).Status);
        Assert.Equal(1, chunks.Count(c => c.Type == UiChunkTypes.ToolApprovalRequest));
    }

    [Fact]
    public void A_refused_approval_ends_its_tool_call_as_denied_even_when_a_subagent_went_on()
    {
        var (mapper, chunks) = Start(StepStart(), Tool("call_1", "bash", "running"), PermissionAsked("per_1", "call_1"),
            PermissionReplied("per_1", "reject"), Tool("call_1", "bash", "error", error: "The user rejected permission"),
            Tool("call_task", "task", "running", subagent: "ses_child"), PermissionAsked("per_2", "call_c", child: "ses_child"),
            PermissionReplied("per_2", "reject", child: "ses_child"), Tool("call_task", "task", "completed", output: "done without it", subagent: "ses_child"));

        Assert.False(mapper.WaitingForUser);
        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(("output-denied", false), (message.Tool("call_1").State, message.Tool("call_1").Approved));
        Assert.Equal(("output-denied", false), (message.Tool("call_task").State, message.Tool("call_task").Approved));
    }

    [Fact]
    public void A_subagents_permission_is_the_approval_of_the_tool_call_that_runs_it_at_any_depth()
    {
        // Asked by the subagent's own subagent, before the task part names its session: shown once it does.
        var (mapper, chunks) = Start(StepStart(), Tool("call_task", "task", "running"), Child("ses_child", Root), Child("ses_grand", "ses_child"),
            PermissionAsked("per_2", "call_in_grandchild", child: "ses_grand"));
        Assert.DoesNotContain(chunks, c => c.Type == UiChunkTypes.ToolApprovalRequest);
        Assert.Single(chunks, c => c.Type == UiChunkTypes.DataPermission);
        Assert.False(mapper.WaitingForUser);

        Apply(mapper, chunks, Tool("call_task", "task", "running", subagent: "ses_child"));

        Assert.True(mapper.WaitingForUser);
        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(("approval-requested", "per_2"), (message.Tool("call_task").State, message.Tool("call_task").ApprovalId));
        var data = (UiMessageMapper.PermissionData)message.Parts.Single(p => p.Type == UiChunkTypes.DataPermission).Data!;
        Assert.Equal(("call_task", "ses_grand"), (data.ToolCallId, data.ChildSessionId));

        Apply(mapper, chunks, PermissionReplied("per_2", "once", child: "ses_grand"), Tool("call_task", "task", "completed", output: "sub done", subagent: "ses_child"));
        Assert.Equal("output-available", UiMessageModel.Fold(chunks).Tool("call_task").State);
    }

    [Fact]
    public void A_question_of_the_session_is_its_question_tool_call_for_the_app_to_answer()
    {
        var (mapper, chunks) = Start(StepStart(), Tool("call_q", "question", "pending"), QuestionAsked("que_1", "call_q"),
            Tool("call_q", "question", "running"));

        Assert.True(mapper.WaitingForUser);
        var tool = UiMessageModel.Fold(chunks).Tool("call_q");
        Assert.Equal(("input-available", false), (tool.State, tool.ProviderExecuted));
        Assert.Equal("Which color?", tool.Input!.Value.GetProperty("questions")[0].GetProperty("question").GetString());
        Assert.Equal("""{"opencode":{"requestId":"que_1"}}""", JsonSerializer.Serialize(tool.CallProviderMetadata));

        Apply(mapper, chunks, QuestionReplied("que_1", """[["Red"]]"""), Tool("call_q", "question", "completed", output: "User has answered"));

        Assert.False(mapper.WaitingForUser);
        tool = UiMessageModel.Fold(chunks).Tool("call_q");
        Assert.Equal(("output-available", true, "User has answered"), (tool.State, tool.ProviderExecuted, tool.Output!.Value.GetString()));
    }

    [Fact]
    public void A_subagents_question_is_a_question_part_of_its_own_ended_by_its_answer_or_dismissal()
    {
        var (mapper, chunks) = Start(StepStart(), Tool("call_task", "task", "running", subagent: "ses_child"),
            QuestionAsked("que_2", "call_in_child", child: "ses_child"), QuestionAsked("que_3", "call_in_child2", child: "ses_child"));

        var message = UiMessageModel.Fold(chunks);
        var question = message.Tool("que_2");
        Assert.Equal(("question", "input-available", false), (question.ToolName, question.State, question.ProviderExecuted));
        Assert.Equal("""{"opencode":{"requestId":"que_2","childSessionId":"ses_child"}}""", JsonSerializer.Serialize(question.CallProviderMetadata));

        Apply(mapper, chunks, QuestionReplied("que_2", """[["Blue"]]"""));
        Assert.True(mapper.WaitingForUser); // que_3 still waits
        Apply(mapper, chunks, QuestionRejected("que_3"));

        Assert.False(mapper.WaitingForUser);
        message = UiMessageModel.Fold(chunks);
        Assert.Equal(("""{"answers":[["Blue"]]}""", true), (message.Tool("que_2").Output!.Value.GetRawText(), message.Tool("que_2").ProviderExecuted));
        Assert.Equal(("output-error", true), (message.Tool("que_3").State, message.Tool("que_3").ProviderExecuted));
        Assert.Equal("input-available", message.Tool("call_task").State);
    }

    [Fact]
    public void A_snapshot_of_an_answer_that_waits_shows_what_it_waits_for()
    {
        var mapper = new UiMessageMapper(Root, _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        mapper.Restate([Stored(StepStartPart(), ToolPart("call_1", "bash", "running"))],
            Snapshot() with { Permissions = [Permission("per_1", "call_1", child: null)], Questions = [Question("que_9", null, "ses_child")] }, chunks);

        Assert.True(mapper.WaitingForUser);
        var message = UiMessageModel.Fold(chunks);
        Assert.Equal("approval-requested", message.Tool("call_1").State);
        Assert.Equal(("question", "input-available"), (message.Tool("que_9").ToolName, message.Tool("que_9").State));
    }

    [Fact]
    public void Continuing_the_apps_copy_shows_its_last_step_again_with_the_approval_it_sent_and_streams_on()
    {
        // The first stream: a step of text, then a step whose tool call waits for approval; it ended there.
        var (first, chunks) = Start(StepStart("prt_s1"), Text("prt_x", "Let me check."), StepStart("prt_s2"), Tool("call_1", "bash", "running"),
            PermissionAsked("per_1", "call_1"));
        first.Finish(chunks);
        var app = UiMessageModel.Fold(chunks);
        Assert.Equal(["step-start", "text", "step-start", "dynamic-tool", UiChunkTypes.DataPermission], app.Parts.Select(p => p.Type));

        // The app approved (addToolApprovalResponse) and sent its copy; the gateway replied "once" and continues it.
        var client = new ClientAnswer("msg_1", Steps: 2, new Dictionary<string, ClientApproval> { ["call_1"] = new("per_1", true, null) },
            new Dictionary<string, ClientToolResult>(), LastStep: []);
        var answered = new Dictionary<string, (string Status, JsonElement? Answers)> { ["per_1"] = ("once", null) };
        var mapper = new UiMessageMapper(Root, _ => "assistant");
        var next = new List<UiMessageChunk>();
        mapper.Continue(client, answered,
            [Stored(StepStartPart("prt_s1"), TextPart("prt_x", "Let me check."), StepStartPart("prt_s2"), ToolPart("call_1", "bash", "running"))],
            Snapshot() with { Permissions = [Permission("per_1", "call_1", child: null)] }, next);

        Assert.False(mapper.WaitingForUser);
        Assert.Equal([UiChunkTypes.Start, UiChunkTypes.ResetStep], next.Take(2).Select(c => c.Type));
        Assert.Equal("msg_1", next[0].MessageId);
        Assert.DoesNotContain(next, c => c.Type is "text-start" or "start-step");
        UiMessageModel.Fold(next, app);
        Assert.Equal(["step-start", "text", "step-start", "dynamic-tool", UiChunkTypes.DataPermission], app.Parts.Select(p => p.Type));
        Assert.Equal(("approval-responded", true), (app.Tool("call_1").State, app.Tool("call_1").Approved));
        Assert.Equal("once", ((UiMessageMapper.PermissionData)app.Parts[^1].Data!).Status);

        next.Clear();
        Apply(mapper, next, PermissionReplied("per_1", "once"), Tool("call_1", "bash", "completed", output: "ok\n"),
            StepStart("prt_s3"), Text("prt_y", "Tool finished."));
        UiMessageModel.Fold(next, app);
        Assert.Equal(("output-available", true), (app.Tool("call_1").State, app.Tool("call_1").Approved));
        Assert.Equal(["Let me check.", "Tool finished."], app.Parts.Where(p => p.Type == "text").Select(p => p.Text));
    }

    [Fact]
    public void Continuing_a_copy_whose_unanswered_approval_opencode_no_longer_lists_shows_the_call_without_it()
    {
        var client = new ClientAnswer("msg_1", Steps: 1, new Dictionary<string, ClientApproval> { ["call_1"] = new("per_1", null, null) },
            new Dictionary<string, ClientToolResult>(), LastStep: []);
        var mapper = new UiMessageMapper(Root, _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        mapper.Continue(client, new Dictionary<string, (string Status, JsonElement? Answers)>(),
            [Stored(StepStartPart(), ToolPart("call_1", "bash", "running"))], Snapshot(), chunks);

        Assert.False(mapper.WaitingForUser);
        Assert.DoesNotContain(chunks, c => c.Type == UiChunkTypes.ToolApprovalRequest);
        Apply(mapper, chunks, Tool("call_1", "bash", "completed", output: "ok"));
        Assert.Equal(("output-available", null), (UiMessageModel.Fold(chunks).Tool("call_1").State, UiMessageModel.Fold(chunks).Tool("call_1").ApprovalId));
    }

    [Fact]
    public void Continuing_after_the_app_answered_a_question_shows_its_answer_until_opencodes_result()
    {
        var client = new ClientAnswer("msg_1", Steps: 1, new Dictionary<string, ClientApproval>(),
            new Dictionary<string, ClientToolResult> { ["call_q"] = new("call_q", "que_1", JsonDocument.Parse("""{"answers":[["Red"]]}""").RootElement, null, "messages[1].parts[1]") },
            LastStep: []);
        var answered = new Dictionary<string, (string Status, JsonElement? Answers)> { ["que_1"] = ("replied", JsonDocument.Parse("""[["Red"]]""").RootElement) };
        var mapper = new UiMessageMapper(Root, _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        mapper.Continue(client, answered, [Stored(StepStartPart(), ToolPart("call_q", "question", "running"))],
            Snapshot() with { Questions = [Question("que_1", "call_q", child: null)] }, chunks);

        // Sent to opencode, the answer is provider-executed: useChat's sendAutomaticallyWhen does not send it again.
        Assert.False(mapper.WaitingForUser);
        var tool = UiMessageModel.Fold(chunks).Tool("call_q");
        Assert.Equal(("output-available", true, """{"answers":[["Red"]]}"""), (tool.State, tool.ProviderExecuted, tool.Output!.Value.GetRawText()));

        Apply(mapper, chunks, Tool("call_q", "question", "completed", output: "User has answered"));
        tool = UiMessageModel.Fold(chunks).Tool("call_q");
        Assert.Equal(("output-available", true, "User has answered"), (tool.State, tool.ProviderExecuted, tool.Output!.Value.GetString()));
    }

    [Fact]
    public void Continuing_restores_a_subagents_question_the_app_answered_that_opencode_no_longer_lists()
    {
        var part = Json("""
            {"type":"dynamic-tool","toolName":"question","toolCallId":"que_2","state":"output-available","providerExecuted":false,
             "input":{"questions":[{"question":"Which color?","header":"Color","options":[]}]},"output":{"answers":[["Blue"]]},
             "callProviderMetadata":{"opencode":{"requestId":"que_2","childSessionId":"ses_child"}}}
            """);
        var client = ClientAnswer.Parse(Json($$"""{"id":"msg_1","role":"assistant","parts":[{"type":"step-start"},{{part.GetRawText()}}]}"""), "messages[1]");
        var mapper = new UiMessageMapper(Root, _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        mapper.Continue(client, new Dictionary<string, (string Status, JsonElement? Answers)>(), [Stored(StepStartPart(), ToolPart("call_task", "task", "running"))],
            Snapshot(), chunks);

        var question = UiMessageModel.Fold(chunks).Tool("que_2");
        Assert.Equal(("output-available", """{"answers":[["Blue"]]}"""), (question.State, question.Output!.Value.GetRawText()));
        Assert.False(mapper.WaitingForUser);
    }

    private (UiMessageMapper Mapper, List<UiMessageChunk> Chunks) Start(params SessionEvent[] events)
    {
        var mapper = new UiMessageMapper(Root, _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, [Event(SessionEventTypes.MessageUpdated) with { MessageId = "msg_1", Info = Json("""{"id":"msg_1","role":"assistant"}""") }, .. events]);
        return (mapper, chunks);
    }

    private static void Apply(UiMessageMapper mapper, List<UiMessageChunk> chunks, params SessionEvent[] events)
    {
        foreach (var evt in events)
        {
            Assert.True(mapper.Apply(evt, chunks));
        }
    }

    private SessionEvent Event(string type) =>
        new() { Upstream = "local", SessionId = Root, Epoch = 1, Seq = ++_seq, Type = type };

    private SessionEvent StepStart(string id = "prt_s") => PartEvent(StepStartPart(id));

    private SessionEvent Text(string id, string text) => PartEvent(TextPart(id, text));

    private SessionEvent Tool(string callId, string tool, string status, string? output = null, string? error = null, string? subagent = null) =>
        PartEvent(ToolPart(callId, tool, status, output, error, subagent));

    private SessionEvent PartEvent(JsonElement part) =>
        Event(SessionEventTypes.PartUpdated) with { MessageId = "msg_1", PartId = part.GetProperty("id").GetString(), Part = part };

    private SessionEvent PermissionAsked(string id, string callId, string? child = null) =>
        Event(SessionEventTypes.PermissionAsked) with { Permission = Permission(id, callId, child), ChildSessionId = child };

    private SessionEvent PermissionReplied(string id, string reply, string? child = null) =>
        Event(SessionEventTypes.PermissionReplied) with { RequestId = id, Reply = reply, ChildSessionId = child };

    private SessionEvent QuestionAsked(string id, string callId, string? child = null) =>
        Event(SessionEventTypes.QuestionAsked) with { Question = Question(id, callId, child), ChildSessionId = child };

    private SessionEvent QuestionReplied(string id, string answers) =>
        Event(SessionEventTypes.QuestionReplied) with { Question = Json($$"""{"id":"{{id}}","sessionID":"{{Root}}","answers":{{answers}}}""") };

    private SessionEvent QuestionRejected(string id) =>
        Event(SessionEventTypes.QuestionRejected) with { Question = Json($$"""{"id":"{{id}}","sessionID":"{{Root}}"}""") };

    private SessionEvent Child(string id, string parent) =>
        Event(SessionEventTypes.ChildUpdated) with { ChildSessionId = id, Child = new ChildSession(id, parent, "sub task", Json("""{"type":"busy"}""")) };

    private static JsonElement Permission(string id, string callId, string? child) => Json($$$"""
        {"id":"{{{id}}}","sessionID":"{{{child ?? Root}}}","permission":"bash","patterns":["echo hi"],"metadata":{"command":"echo hi"},
         "always":["echo *"],"tool":{"messageID":"msg_x","callID":"{{{callId}}}"}}
        """);

    private static JsonElement Question(string id, string? callId, string? child) => Json(JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["id"] = id,
        ["sessionID"] = child ?? Root,
        ["questions"] = new[]
        {
            new { question = "Which color?", header = "Color", options = new[] { new { label = "Red", description = "r" }, new { label = "Blue", description = "b" } } },
        },
        ["tool"] = callId is null ? null : new { messageID = "msg_x", callID = callId },
    }.Where(p => p.Value is not null).ToDictionary()));

    private static JsonElement StepStartPart(string id = "prt_s") => Json($$"""{"id":"{{id}}","type":"step-start"}""");

    private static JsonElement TextPart(string id, string text) =>
        Json(JsonSerializer.Serialize(new { id, type = "text", text, time = new { start = 1, end = 2 } }));

    private static JsonElement ToolPart(string callId, string tool, string status, string? output = null, string? error = null, string? subagent = null) =>
        Json(JsonSerializer.Serialize(new
        {
            id = $"prt_{callId}", type = "tool", tool, callID = callId,
            state = new Dictionary<string, object?>
            {
                ["status"] = status, ["input"] = new { command = "echo hi" },
                ["output"] = output, ["error"] = error,
                ["metadata"] = subagent is null ? null : new { sessionId = subagent },
            }.Where(p => p.Value is not null).ToDictionary(),
        }));

    private static MessageWithParts Stored(params JsonElement[] parts) => new(Json("""{"id":"msg_1","role":"assistant"}"""), parts);

    private static SessionSnapshot Snapshot() => new()
    {
        Upstream = "local", SessionId = Root, Epoch = 1, Seq = 0, Session = Json("{}"), Messages = [],
        Status = Json("""{"type":"busy"}"""), Permissions = [],
    };

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
