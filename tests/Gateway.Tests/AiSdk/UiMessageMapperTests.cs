using System.Text.Json;
using OpencodeGateway.AiSdk;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Tests.Fixtures;

namespace Gateway.Tests.AiSdk;

/// <summary>How session events become UI message stream chunks: real captured opencode streams, then gaps and restatements.</summary>
public sealed class UiMessageMapperTests
{
    /// <summary>Runs a captured stream's events of one session through a live session and the mapper.</summary>
    private static (List<UiMessageChunk> Chunks, List<SessionEvent> Events) Map(string file, string sessionId)
    {
        var live = new LiveSession("local", sessionId, 7, 100_000, long.MaxValue, 0);
        var mapper = new UiMessageMapper(live.RoleOf);
        var chunks = new List<UiMessageChunk>();
        var events = new List<SessionEvent>();
        foreach (var upstream in CapturedStreams.Normalized(file).Where(e => e.SessionId == sessionId))
        {
            if (live.Apply(upstream) is { } evt)
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
        Assert.All(chunks.Where(c => c.ToolCallId is not null), c => Assert.True(c.ProviderExecuted));
        Assert.Equal(["tool-input-start", "tool-input-available", "tool-output-available"],
            chunks.Where(c => c.Type.StartsWith("tool-", StringComparison.Ordinal)).Select(c => c.Type));
        // the permission request it waited for, then its reply, as one data part restated with the reply
        var permission = Assert.Single(message.Parts, p => p.Type == UiChunkTypes.DataPermission);
        var replied = events.Single(e => e.Type == SessionEventTypes.PermissionReplied).Reply;
        Assert.Equal(replied, ((UiMessageMapper.PermissionData)permission.Data!).Status);
    }

    [Fact]
    public void A_gap_ends_the_text_part_and_marks_it_before_the_text_that_follows()
    {
        var mapper = new UiMessageMapper(_ => "assistant");
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
        var mapper = new UiMessageMapper(_ => "assistant");
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
        var mapper = new UiMessageMapper(_ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, StepStart(), Part("text", ""), Delta(0, "Hel"), Part("text", "Hello", ended: true));

        Assert.DoesNotContain(chunks, c => c.Type == UiChunkTypes.ResetStep);
        Assert.Equal(["Hel", "lo"], chunks.Where(c => c.Type == "text-delta").Select(c => c.Delta));
    }

    [Fact]
    public void A_delta_past_the_known_text_asks_for_a_snapshot_and_a_repeated_one_is_applied_once()
    {
        var mapper = new UiMessageMapper(_ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, Part("text", ""), Delta(0, "abc"), Delta(1, "bcd"));
        Assert.Equal("abcd", UiMessageModel.Fold(chunks).Parts.Single().Text);

        Assert.False(mapper.Apply(Delta(9, "x"), chunks));
    }

    [Fact]
    public void A_snapshot_of_a_part_in_an_earlier_step_that_changed_is_marked_as_restated()
    {
        var mapper = new UiMessageMapper(_ => "assistant");
        var chunks = new List<UiMessageChunk>();
        Apply(mapper, chunks, StepStart(), Part("text", ""), Delta(0, "lost text"), StepStart("prt_s2"));

        mapper.Restate([new MessageWithParts(Info(), [Json("""{"id":"prt_1","type":"text","text":"kept","time":{"start":1,"end":2}}""")])], [], chunks);

        var message = UiMessageModel.Fold(chunks);
        Assert.Equal(["step-start", "text", "step-start", UiChunkTypes.DataGap, "text"], message.Parts.Select(p => p.Type));
        Assert.True(((UiMessageMapper.GapData)message.Parts[3].Data!).Restated);
        Assert.Equal("kept", message.Parts[4].Text);
    }

    [Fact]
    public void Opencode_errors_become_error_chunks_and_an_abort_an_abort()
    {
        var mapper = new UiMessageMapper(_ => "assistant");
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
        Event(UiMessageMapper.PartGap) with { MessageId = "msg_1", PartId = "prt_1", Field = "text", Offset = offset };

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}

/// <summary>The UI message the AI SDK's <c>processUIMessageStream</c> builds from chunks (the parts these tests read).</summary>
internal sealed class UiMessageModel
{
    public string? Id { get; private set; }
    public List<UiPart> Parts { get; } = [];

    public static UiMessageModel Fold(IEnumerable<UiMessageChunk> chunks)
    {
        var message = new UiMessageModel();
        var open = new Dictionary<string, UiPart>();
        foreach (var c in chunks)
        {
            switch (c.Type)
            {
                case "start":
                    message.Id = c.MessageId ?? message.Id;
                    break;
                case "start-step":
                    message.Parts.Add(new UiPart("step-start"));
                    break;
                case "reset-step":
                    var from = message.Parts.FindLastIndex(p => p.Type == "step-start") + 1;
                    message.Parts.RemoveRange(from, message.Parts.Count - from);
                    open.Clear();
                    break;
                case "text-start" or "reasoning-start":
                    var part = new UiPart(c.Type[..^6]) { State = "streaming" };
                    open[c.Id!] = part;
                    message.Parts.Add(part);
                    break;
                case "text-delta" or "reasoning-delta":
                    open[c.Id!].Text += c.Delta;
                    break;
                case "text-end" or "reasoning-end":
                    open[c.Id!].State = "done";
                    open.Remove(c.Id!);
                    break;
                case "tool-input-start":
                    message.Parts.Add(new UiPart("dynamic-tool") { ToolCallId = c.ToolCallId, ToolName = c.ToolName, State = "input-streaming" });
                    break;
                case "tool-input-available":
                    var tool = message.Parts.Last(p => p.ToolCallId == c.ToolCallId);
                    (tool.State, tool.Input) = ("input-available", c.Input);
                    break;
                case "tool-output-available":
                    var done = message.Parts.Last(p => p.ToolCallId == c.ToolCallId);
                    (done.State, done.Output) = ("output-available", c.Output);
                    break;
                case "tool-output-error":
                    message.Parts.Last(p => p.ToolCallId == c.ToolCallId).State = "output-error";
                    break;
                default:
                    if (c.Type.StartsWith("data-", StringComparison.Ordinal))
                    {
                        var existing = c.Id is null ? null : message.Parts.FirstOrDefault(p => p.Type == c.Type && p.Id == c.Id);
                        if (existing is not null)
                        {
                            existing.Data = c.Data;
                        }
                        else
                        {
                            message.Parts.Add(new UiPart(c.Type) { Id = c.Id, Data = c.Data });
                        }
                    }

                    break;
            }
        }

        return message;
    }
}

internal sealed class UiPart(string type)
{
    public string Type { get; } = type;
    public string? Id { get; init; }
    public string Text { get; set; } = "";
    public string? State { get; set; }
    public string? ToolCallId { get; init; }
    public string? ToolName { get; init; }
    public JsonElement? Input { get; set; }
    public JsonElement? Output { get; set; }
    public object? Data { get; set; }
}
