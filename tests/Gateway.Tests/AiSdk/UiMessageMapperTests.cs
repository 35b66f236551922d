using System.Text.Json;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Tests.Fixtures;

namespace Gateway.Tests.AiSdk;

/// <summary>How session events become UI message stream chunks: real captured opencode streams, then gaps and restatements.</summary>
public sealed class UiMessageMapperTests
{
    /// <summary>Runs a captured stream's events of one session through a live session and the mapper.</summary>
    private static (List<UiMessageChunk> Chunks, List<SessionEvent> Events) Map(string file, string sessionId)
    {
        var live = new LiveSession(new SessionKey("local", sessionId), 7, 100_000, long.MaxValue, 0);
        var mapper = new UiMessageMapper(sessionId, live.RoleOf);
        var chunks = new List<UiMessageChunk>();
        var events = new List<SessionEvent>();
        foreach (var upstream in CapturedStreams.Normalized(file).Where(e => e.SessionId == sessionId))
        {
            var emitted = new List<SessionEvent>();
            live.Apply(upstream, emitted);
            foreach (var evt in emitted)
            {
                events.Add(evt);
                Assert.True(mapper.Apply(evt, chunks));
            }
        }

        mapper.Finish(chunks);
        return (chunks, events);
    }

    [Fact]
    public void Reasoning_and_text_stream_as_their_parts_in_one_message_with_steps()
    {
        var (chunks, _) = Map("event-reasoning.sse", "ses_e02bb7693ffeR0SFaA5mfY2LS5");
        var message = UiMessageModel.Fold(chunks);

        Assert.Equal("start", chunks[0].Type);
        Assert.StartsWith("msg_", chunks[0].MessageId);
        Assert.Equal("finish", chunks[^1].Type);
        Assert.Equal("stop", chunks[^1].FinishReason);
        Assert.Equal(["step-start", "reasoning", "text"], message.Parts.Select(p => p.Type));
        Assert.Equal("r1 r2 r3 ", message.Parts[1].Text);
        Assert.Equal("t1 t2 ", message.Parts[2].Text);
        Assert.All(message.Parts.Skip(1), p => Assert.Equal("done", p.State));
        // the user's own text part never appears in the answer
        Assert.DoesNotContain(chunks, c => c.Delta?.Contains("reasoning=3") == true);
    }

    [Fact]
    public void A_tool_call_is_a_provider_executed_dynamic_tool_part_from_input_to_output()
    {
        var (chunks, events) = Map("event.sse", "ses_e02d88428ffekWX1w9mH7ak34F");
        var message = UiMessageModel.Fold(chunks);

        var tool = Assert.Single(message.Parts, p => p.Type == "dynamic-tool");
        Assert.Equal("bash", tool.ToolName);
        Assert.Equal("output-available", tool.State);
        Assert.Equal("echo mock-tool-output", tool.Input!.Value.GetProperty("command").GetString());
        Assert.Equal("mock-tool-output\n", tool.Output!.Value.GetString());
        Assert.All(chunks.Where(c => c.Type is "tool-input-start" or "tool-input-available" or "tool-output-available"), c => Assert.True(c.ProviderExecuted));
        Assert.Equal(["tool-input-start", "tool-input-available", "tool-approval-request", "tool-approval-response", "tool-output-available"],
            chunks.Where(c => c.Type.StartsWith("tool-", StringComparison.Ordinal)).Select(c => c.Type));
        Assert.Equal(("output-available", true), (tool.State, tool.Approved));
        // the permission request it waited for, then its reply, as one data part restated with the reply
        var permission = Assert.Single(message.Parts, p => p.Type == UiChunkTypes.DataPermission);
        var replied = events.Single(e => e.Type == SessionEventTypes.PermissionReplied).Reply;
        Assert.Equal(replied, ((UiMessageMapper.PermissionData)permission.Data!).Status);
    }

    [Fact]
    public void A_gap_ends_the_text_part_and_marks_it_before_the_text_that_follows()
    {
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, Part("text", ""), Delta(0, "Hello "), Gap(6), Delta(6, "world"));

        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(["text", UiChunkTypes.DataGap, "text"], message.Parts.Select(p => p.Type));
        Assert.Equal("Hello ", message.Parts[0].Text);
        Assert.Equal("done", message.Parts[0].State);
        Assert.Equal(6, ((UiMessageMapper.GapData)message.Parts[1].Data!).Offset);
        Assert.Equal("world", message.Parts[2].Text);
        Assert.Equal("prt_1", ((UiMessageMapper.GapData)message.Parts[1].Data!).PartId);
    }

    [Fact]
    public void A_restatement_that_does_not_extend_the_shown_text_resets_the_step_and_shows_it_again()
    {
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, StepStart(), Part("text", ""), Delta(0, "Hello "), Gap(6), Delta(6, "world"),
            Part("text", "Hello dear world", ended: true));

        Assert.Contains(chunks, c => c.Type == UiChunkTypes.ResetStep);
        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(["step-start", "text"], message.Parts.Select(p => p.Type));
        Assert.Equal("Hello dear world", message.Parts[1].Text);
        Assert.Equal("done", message.Parts[1].State);
    }

    [Fact]
    public void A_restatement_that_extends_the_text_streams_only_the_rest()
    {
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, StepStart(), Part("text", ""), Delta(0, "Hel"), Part("text", "Hello", ended: true));

        Assert.DoesNotContain(chunks, c => c.Type == UiChunkTypes.ResetStep);
        Assert.Equal(["Hel", "lo"], chunks.Where(c => c.Type == "text-delta").Select(c => c.Delta));
    }

    [Fact]
    public void A_delta_past_the_known_text_asks_for_a_snapshot_and_a_repeated_one_is_applied_once()
    {
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, Part("text", ""), Delta(0, "abc"), Delta(1, "bcd"));
        Assert.Equal("abcd", UiMessageModel.Fold(chunks).Parts.Single().Text);

        Assert.False(mapper.Apply(Delta(9, "x"), chunks));
    }

    [Fact]
    public void A_snapshot_with_gaps_shows_the_text_split_at_them_with_gap_parts_between()
    {
        // A resume right after an upstream reconnect: the gateway kept "t1 t2 " and what followed the gap.
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>> gaps =
            new Dictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>> { ["prt_1"] = new Dictionary<string, IReadOnlyList<int>> { ["text"] = [6] } };
        mapper.Restate([new MessageWithParts(Info(), [Json("""{"id":"prt_s","type":"step-start"}"""),
            Json("""{"id":"prt_1","type":"text","text":"t1 t2 t9 t10 ","time":{"start":1}}""")])], Snapshot() with { Gaps = gaps }, chunks);

        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(["step-start", "text", UiChunkTypes.DataGap, "text"], message.Parts.Select(p => p.Type));
        Assert.Equal("t1 t2 ", message.Parts[1].Text);
        Assert.Equal(6, ((UiMessageMapper.GapData)message.Parts[2].Data!).Offset);
        Assert.Equal("t9 t10 ", message.Parts[3].Text);
    }

    [Fact]
    public void A_snapshot_of_a_part_in_an_earlier_step_that_changed_is_marked_as_restated()
    {
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, StepStart(), Part("text", ""), Delta(0, "lost text"), StepStart("prt_s2"));

        mapper.Restate([new MessageWithParts(Info(), [Json("""{"id":"prt_1","type":"text","text":"kept","time":{"start":1,"end":2}}""")])], Snapshot(), chunks);

        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(["step-start", "text", "step-start", UiChunkTypes.DataGap, "text"], message.Parts.Select(p => p.Type));
        Assert.True(((UiMessageMapper.GapData)message.Parts[3].Data!).Restated);
        Assert.Equal("kept", message.Parts[4].Text);
    }

    [Fact]
    public void Opencode_errors_become_error_chunks_and_an_abort_an_abort()
    {
        var mapper = new UiMessageMapper("ses_1", _ => "assistant");
        var chunks = new List<UiMessageChunk>();
        mapper.Apply(Event(SessionEventTypes.Error) with { Error = Json("""{"name":"APIError","data":{"message":"rate limited"}}""") }, chunks);
        mapper.Apply(Event(SessionEventTypes.Error) with { Error = Json("""{"name":"MessageAbortedError","data":{"message":"Aborted"}}""") }, chunks);

        Assert.Equal(["start", "error", "abort"], chunks.Select(c => c.Type));
        Assert.Equal("APIError: rate limited", chunks[1].ErrorText);
    }

    private static void Apply(UiMessageMapper mapper, List<UiMessageChunk> chunks, params SessionEvent[] events)
    {
        Apply(mapper, chunks, (IEnumerable<SessionEvent>)events);
    }

    private static void Apply(UiMessageMapper mapper, List<UiMessageChunk> chunks, IEnumerable<SessionEvent> events)
    {
        mapper.Apply(Event(SessionEventTypes.MessageUpdated) with { MessageId = "msg_1", Info = Info() }, chunks);
        foreach (var evt in events)
        {
            Assert.True(mapper.Apply(evt, chunks));
        }
    }

    private static int _seq;

    private static SessionEvent Event(string type) =>
        new() { Upstream = "local", SessionId = "ses_1", Epoch = 1, Seq = Interlocked.Increment(ref _seq), Type = type };

    private static JsonElement Info() => Json("""{"id":"msg_1","role":"assistant"}""");

    private static SessionSnapshot Snapshot() => new()
    {
        Upstream = "local", SessionId = "ses_1", Epoch = 1, Seq = 0, Session = Json("{}"), Messages = [],
        Status = Json("""{"type":"busy"}"""), Permissions = [],
    };

    private static SessionEvent StepStart(string id = "prt_s1") =>
        Event(SessionEventTypes.PartUpdated) with { MessageId = "msg_1", PartId = id, Part = Json($$"""{"id":"{{id}}","type":"step-start"}""") };

    private static SessionEvent Part(string type, string text, bool ended = false) =>
        Event(SessionEventTypes.PartUpdated) with
        {
            MessageId = "msg_1", PartId = "prt_1",
            Part = Json(JsonSerializer.Serialize(new { id = "prt_1", type, text, time = ended ? (object)new { start = 1, end = 2 } : new { start = 1 } })),
        };

    private static SessionEvent Delta(int offset, string delta) =>
        Event(SessionEventTypes.PartDelta) with { MessageId = "msg_1", PartId = "prt_1", Field = "text", Offset = offset, Delta = delta };

    private static SessionEvent Gap(int offset) =>
        Event(SessionEventTypes.PartGap) with { MessageId = "msg_1", PartId = "prt_1", Field = "text", Offset = offset };

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
