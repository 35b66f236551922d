using OpencodeGateway.Client;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;
using static OpencodeGateway.Tests.Client.SessionEvents;

namespace OpencodeGateway.Tests.Client;

/// <summary>
/// The client rules of Gateway.Client (README, "Client rules") against constructed event sequences: the session state
/// alone, without a connection. Each test follows what the state reports at every item (<see cref="SessionUpdate"/>).
/// </summary>
public sealed class SessionRulesTests
{
    private readonly List<SessionUpdate> _updates = [];

    private SessionState NewState(bool positionOnly = false, SessionView? resumeFrom = null) =>
        new(Session, positionOnly, resumeFrom, _updates.Add);

    private static long At => 0;

    /// <summary>A state joined with <paramref name="snapshot"/> (rules 1 and 2).</summary>
    private SessionState JoinedState(SessionSnapshot snapshot, bool positionOnly = false)
    {
        var state = NewState(positionOnly);
        Assert.Null(state.BeginJoin());
        Assert.Null(state.CompleteJoin(Joined(snapshot), At));
        return state;
    }

    private static SessionSnapshot OnePart(string text = "Hello", long epoch = 1, long seq = 5, int? sessionHandle = null) =>
        Snapshot(epoch, seq, [Message("msg_1", "assistant", Text("prt_1", text))],
            handles: new Dictionary<string, IReadOnlyDictionary<string, int>> { ["prt_1"] = new Dictionary<string, int> { ["text"] = 3 } },
            sessionHandle: sessionHandle);

    [Fact]
    public void Events_in_order_are_applied_and_the_view_takes_their_position()
    {
        var state = JoinedState(OnePart());
        Assert.Null(state.ReceiveEvent(Delta(1, 6, "prt_1", 5, " wor"), At));
        Assert.Null(state.ReceiveEvent(Delta(1, 7, "prt_1", 9, "ld"), At));
        Assert.Null(state.ReceiveEvent(Status(1, 8, "busy"), At));

        Assert.Equal("Hello world", state.View.Part("prt_1")!.Text);
        Assert.Equal((1L, 8L), (state.View.Epoch, state.View.Seq));
        Assert.Equal("busy", state.View.StatusType);
        Assert.Equal([SessionUpdateKind.Snapshot, SessionUpdateKind.Event, SessionUpdateKind.Event, SessionUpdateKind.Event], _updates.Select(u => u.Kind));
        // Every update carries the views around it: what was shown before and after each event.
        Assert.Equal("Hello wor", _updates[1].View.Part("prt_1")!.Text);
        Assert.Equal("Hello", _updates[1].Previous.Part("prt_1")!.Text);
    }

    [Fact]
    public void A_duplicate_seq_is_ignored()
    {
        var state = JoinedState(OnePart());
        state.ReceiveEvent(Delta(1, 6, "prt_1", 5, "!"), At);
        var view = state.View;

        Assert.Null(state.ReceiveEvent(Delta(1, 6, "prt_1", 5, "!"), At));
        Assert.Null(state.ReceiveEvent(Delta(1, 4, "prt_1", 0, "Hel"), At));

        Assert.Same(view, state.View);
        Assert.Equal("Hello!", state.View.Part("prt_1")!.Text);
        Assert.Equal([SessionUpdateKind.Duplicate, SessionUpdateKind.Duplicate], _updates.Skip(2).Select(u => u.Kind));
    }

    [Fact]
    public void A_gap_rejoins_with_since_and_applies_what_it_held_back_after_the_recovered_events()
    {
        var state = JoinedState(OnePart());
        // seq 6 was lost: 7 shows the hole.
        var action = state.ReceiveEvent(Delta(1, 7, "prt_1", 7, "c"), At);
        Assert.Equal(new RejoinAction(new StreamPosition(1, 5), RejoinReason.Gap), action);
        Assert.True(state.IsJoining);
        // What arrives during the rejoin is buffered (rule 1), the event that showed the gap too.
        Assert.Null(state.ReceiveEvent(Delta(1, 8, "prt_1", 8, "d"), At));
        Assert.Equal("Hello", state.View.Part("prt_1")!.Text);

        Assert.Null(state.CompleteJoin(Recovered(1, 7, null, Delta(1, 6, "prt_1", 5, "ab"), Delta(1, 7, "prt_1", 7, "c")), At));

        Assert.Equal("Helloabcd", state.View.Part("prt_1")!.Text);
        Assert.Equal(8, state.View.Seq);
        Assert.Equal(
            [SessionUpdateKind.Snapshot, SessionUpdateKind.Rejoin, SessionUpdateKind.Recovered, SessionUpdateKind.Event, SessionUpdateKind.Event,
                SessionUpdateKind.Duplicate, SessionUpdateKind.Event],
            _updates.Select(u => u.Kind));
    }

    [Fact]
    public void An_event_of_another_epoch_rejoins_without_since_and_the_new_snapshot_replaces_the_view()
    {
        var state = JoinedState(OnePart());
        var action = state.ReceiveEvent(Event(2, 1, SessionEventTypes.EpochStarted), At);
        Assert.Equal(new RejoinAction(null, RejoinReason.Epoch), action);

        Assert.Null(state.CompleteJoin(Joined(OnePart("Hello there", epoch: 2, seq: 3)), At));

        Assert.Equal((2L, 3L), (state.View.Epoch, state.View.Seq));
        Assert.Equal("Hello there", state.View.Part("prt_1")!.Text);
        // The buffered event of the new epoch (seq 1 ≤ 3) is a duplicate now.
        Assert.Equal(SessionUpdateKind.Duplicate, _updates[^1].Kind);
    }

    [Fact]
    public void A_delta_past_the_end_of_the_text_rejoins_with_since_then_for_a_snapshot_when_since_did_not_mend_it()
    {
        var state = JoinedState(OnePart());
        Assert.Equal(new RejoinAction(new StreamPosition(1, 5), RejoinReason.DeltaGap), state.ReceiveEvent(Delta(1, 6, "prt_1", 9, "xyz"), At));
        // The recovered events bring the same delta again: since cannot repair it, only a snapshot can.
        Assert.Equal(new RejoinAction(null, RejoinReason.DeltaGap), state.CompleteJoin(Recovered(1, 6, null, Delta(1, 6, "prt_1", 9, "xyz")), At));

        Assert.Null(state.CompleteJoin(Joined(OnePart("Hello, xyz", seq: 6)), At));
        Assert.Equal("Hello, xyz", state.View.Part("prt_1")!.Text);
    }

    [Fact]
    public void Overlapping_deltas_add_only_their_tail_and_a_delta_held_already_changes_nothing()
    {
        var state = JoinedState(OnePart());
        state.ReceiveEvent(Delta(1, 6, "prt_1", 3, "lo wo"), At);
        state.ReceiveEvent(Delta(1, 7, "prt_1", 0, "Hel"), At);

        Assert.Equal("Hello wo", state.View.Part("prt_1")!.Text);
        Assert.Equal(7, state.View.Seq);
    }

    [Fact]
    public void Offsets_count_utf16_code_units()
    {
        var state = JoinedState(OnePart("😀"));
        state.ReceiveEvent(Delta(1, 6, "prt_1", 2, "é"), At);

        Assert.Equal("😀é", state.View.Part("prt_1")!.Text);
    }

    [Fact]
    public void Compact_deltas_apply_through_the_session_and_part_field_handles()
    {
        var state = JoinedState(OnePart(sessionHandle: 9));
        Assert.Null(state.ReceiveDelta(new CompactDelta(9, 6, 3, 5, " world"), At));
        // Another session handle: an epoch left behind (rule 8), ignored.
        Assert.Null(state.ReceiveDelta(new CompactDelta(8, 7, 3, 11, "!"), At));
        // A part field introduced by an event, then named by its handle alone.
        state.ReceiveEvent(TextPart(1, 7, "prt_2", "", handle: 4), At);
        state.ReceiveDelta(new CompactDelta(9, 8, 4, 0, "second"), At);

        Assert.Equal("Hello world", state.View.Part("prt_1")!.Text);
        Assert.Equal("second", state.View.Part("prt_2")!.Text);
        Assert.Equal(SessionUpdateKind.Ignored, _updates[2].Kind);
        Assert.Equal(8, state.View.Seq);
    }

    [Fact]
    public void A_compact_delta_of_a_handle_never_introduced_rejoins_for_a_snapshot()
    {
        var state = JoinedState(OnePart(sessionHandle: 9));

        Assert.Equal(new RejoinAction(null, RejoinReason.UnknownHandle), state.ReceiveDelta(new CompactDelta(9, 6, 77, 5, "?"), At));
        Assert.Equal(RejoinReason.UnknownHandle, _updates[^1].RejoinReason);
    }

    [Fact]
    public void What_arrives_before_the_join_result_is_buffered_and_sorted_out_after_it()
    {
        var state = NewState();
        state.BeginJoin();
        // Events and compact deltas can arrive before the join's result; the delta's s is only known from the result.
        state.ReceiveEvent(Delta(1, 5, "prt_1", 0, "Hello"), At);
        state.ReceiveDelta(new CompactDelta(9, 6, 3, 5, "!"), At);
        state.ReceiveDelta(new CompactDelta(7, 1, 1, 0, "other session"), At);

        Assert.Null(state.CompleteJoin(Joined(OnePart(sessionHandle: 9)), At));

        Assert.Equal("Hello!", state.View.Part("prt_1")!.Text);
        Assert.Equal(
            [SessionUpdateKind.Snapshot, SessionUpdateKind.Duplicate, SessionUpdateKind.Delta, SessionUpdateKind.Ignored],
            _updates.Select(u => u.Kind));
    }

    [Fact]
    public void A_pushed_snapshot_replaces_the_view_only_when_it_is_newer()
    {
        var state = JoinedState(OnePart(sessionHandle: 9));
        state.ReceiveSnapshot(OnePart("stale", seq: 4), At);
        Assert.Equal("Hello", state.View.Part("prt_1")!.Text);
        Assert.Equal(SessionUpdateKind.Duplicate, _updates[^1].Kind);

        state.ReceiveSnapshot(OnePart("Hello again", epoch: 2, seq: 1, sessionHandle: 12), At);

        Assert.Equal("Hello again", state.View.Part("prt_1")!.Text);
        Assert.Equal(12, state.SessionHandle);
        Assert.Null(state.ReceiveDelta(new CompactDelta(12, 2, 3, 11, "."), At));
        Assert.Equal("Hello again.", state.View.Part("prt_1")!.Text);
    }

    [Fact]
    public void Gap_marks_come_from_snapshots_and_part_gap_and_a_restated_text_drops_them()
    {
        var gaps = new Dictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>>
        {
            ["prt_1"] = new Dictionary<string, IReadOnlyList<int>> { ["text"] = [2] },
        };
        var state = JoinedState(Snapshot(1, 5, [Message("msg_1", "assistant", Text("prt_1", "t1t9"))], gaps: gaps));
        Assert.Equal([2], state.View.Part("prt_1")!.GapsOf());
        Assert.Equal("t1…t9", state.View.Part("prt_1")!.Display());

        state.ReceiveEvent(Gap(1, 6, "prt_1", 4), At);
        state.ReceiveEvent(Delta(1, 7, "prt_1", 4, "t20"), At);
        Assert.Equal("t1…t9…t20", state.View.Part("prt_1")!.Display());
        // A part.updated without text keeps the text and its marks; one with text restates it whole.
        state.ReceiveEvent(TextPart(1, 8, "prt_1", null), At);
        Assert.Equal("t1…t9…t20", state.View.Part("prt_1")!.Display());
        state.ReceiveEvent(TextPart(1, 9, "prt_1", "t1t2t9t20"), At);

        Assert.Empty(state.View.Part("prt_1")!.GapsOf());
        Assert.Equal("t1t2t9t20", state.View.Part("prt_1")!.Display());
    }

    [Fact]
    public void A_tool_part_takes_the_text_its_copies_name_and_loses_the_streamed_fields_it_lacks()
    {
        var state = JoinedState(OnePart());
        var running = Event(1, 6, SessionEventTypes.PartUpdated) with
        {
            MessageId = "msg_1", PartId = "prt_t",
            Part = Json(new { id = "prt_t", messageID = "msg_1", type = "tool", state = new { status = "running", metadata = new { output = "" } } }),
            Handles = new Dictionary<string, int> { [StreamedFields.ToolMetadataOutput] = 5 },
        };
        state.ReceiveEvent(running, At);
        state.ReceiveEvent(Event(1, 7, SessionEventTypes.PartDelta) with
        {
            MessageId = "msg_1", PartId = "prt_t", Field = StreamedFields.ToolMetadataOutput, Offset = 0, Delta = "line 1\n", Handle = 5,
        }, At);
        // Completed: the part's state.output is the streamed output, named by handle instead of sent again.
        state.ReceiveEvent(Event(1, 8, SessionEventTypes.PartUpdated) with
        {
            MessageId = "msg_1", PartId = "prt_t",
            Part = Json(new { id = "prt_t", messageID = "msg_1", type = "tool", state = new { status = "completed" } }),
            Copies = new Dictionary<string, int> { [StreamedFields.ToolOutput] = 5 },
        }, At);

        var tool = state.View.Part("prt_t")!;
        Assert.Equal("line 1\n", tool.Field(StreamedFields.ToolOutput));
        Assert.Null(tool.Field(StreamedFields.ToolMetadataOutput));
        Assert.Equal("completed", tool.Json.GetProperty("state").GetProperty("status").GetString());
        Assert.Equal("line 1\n", tool.Json.GetProperty("state").GetProperty("output").GetString());
        Assert.Equal("tool", tool.Type);
    }

    [Fact]
    public void What_a_run_waits_for_is_kept_by_request_id_whichever_session_asked()
    {
        var state = JoinedState(Snapshot(1, 1, permissions: [Json(new { id = "per_1", sessionID = Session })]));
        state.ReceiveEvent(Event(1, 2, SessionEventTypes.PermissionAsked) with
        {
            Permission = Json(new { id = "per_2", sessionID = "ses_child" }), ChildSessionId = "ses_child",
        }, At);
        state.ReceiveEvent(Event(1, 3, SessionEventTypes.QuestionAsked) with { Question = Json(new { id = "que_1", sessionID = "ses_child" }) }, At);
        state.ReceiveEvent(Event(1, 4, SessionEventTypes.ChildUpdated) with
        {
            ChildSessionId = "ses_child", Child = new ChildSession("ses_child", Session, "sub", Json(new { type = "busy" })),
        }, At);
        state.ReceiveEvent(Event(1, 5, SessionEventTypes.PermissionReplied) with { RequestId = "per_1", Reply = "once" }, At);
        state.ReceiveEvent(Event(1, 6, SessionEventTypes.QuestionRejected) with { Question = Json(new { id = "que_1", sessionID = "ses_child" }) }, At);

        Assert.Equal(["per_2"], state.View.Permissions.Select(p => p.GetProperty("id").GetString()));
        Assert.Empty(state.View.Questions);
        Assert.Equal("sub", Assert.Single(state.View.Children).Title);
    }

    [Fact]
    public void Earlier_pages_go_before_the_messages_held_and_a_new_snapshot_keeps_them()
    {
        var state = JoinedState(Snapshot(1, 1, [Message("msg_3", "user", Text("prt_3", "three", "msg_3"))], earlier: new EarlierMessages("c3")));
        Assert.False(state.ApplyEarlier("not the cursor", new MessagePage([], null), At));

        Assert.True(state.ApplyEarlier("c3", new MessagePage([Message("msg_2", "assistant", Text("prt_2", "two", "msg_2"))], new EarlierMessages("c2")), At));
        Assert.Equal(["msg_2", "msg_3"], state.View.Messages.Select(m => m.Id));
        Assert.Equal("c2", state.View.Earlier?.Cursor);

        // A new epoch's window starts at a message held: the paged one stays, and so does the cursor to go on from.
        state.ReceiveSnapshot(Snapshot(2, 1, [Message("msg_3", "user", Text("prt_3", "three", "msg_3")), Message("msg_4", "assistant")],
            earlier: new EarlierMessages("c3")), At);

        Assert.Equal(["msg_2", "msg_3", "msg_4"], state.View.Messages.Select(m => m.Id));
        Assert.Equal("c2", state.View.Earlier?.Cursor);
    }

    [Fact]
    public void Recovered_events_of_another_epoch_than_the_view_ask_for_a_snapshot()
    {
        var state = JoinedState(OnePart());
        state.ReceiveEvent(Delta(1, 7, "prt_1", 5, "!"), At); // a gap

        Assert.Equal(new RejoinAction(null, RejoinReason.RecoveryFailed), state.CompleteJoin(Recovered(3, 2, null), At));
    }

    [Fact]
    public void Recovered_events_that_stop_short_of_the_promised_position_ask_for_a_snapshot()
    {
        var state = JoinedState(OnePart());
        state.BeginJoin();

        Assert.Equal(new RejoinAction(null, RejoinReason.RecoveryFailed), state.CompleteJoin(Recovered(1, 8, null, Delta(1, 6, "prt_1", 5, "!")), At));
    }

    [Fact]
    public void A_view_held_before_resumes_with_since_and_its_part_field_handles()
    {
        var first = JoinedState(OnePart(sessionHandle: 9));
        var resumed = NewState(resumeFrom: first.View);

        Assert.Equal(new StreamPosition(1, 5), resumed.BeginJoin());
        Assert.Null(resumed.CompleteJoin(Recovered(1, 6, 21, Delta(1, 6, "prt_1", 5, ",")), At));
        Assert.Null(resumed.ReceiveDelta(new CompactDelta(21, 7, 3, 6, " you"), At));

        Assert.Equal("Hello, you", resumed.View.Part("prt_1")!.Text);
    }

    [Fact]
    public void Position_only_keeps_the_position_and_still_follows_the_seq_and_epoch_rules()
    {
        var state = JoinedState(OnePart(sessionHandle: 9), positionOnly: true);
        Assert.Empty(state.View.Messages);
        Assert.Null(state.ReceiveDelta(new CompactDelta(9, 6, 99, 1000, "no text is kept"), At));
        Assert.Null(state.ReceiveEvent(Delta(1, 7, "prt_1", 1000, "x"), At));
        Assert.Equal(7, state.View.Seq);

        Assert.Equal(new RejoinAction(new StreamPosition(1, 7), RejoinReason.Gap), state.ReceiveEvent(Status(1, 9, "idle"), At));
        Assert.Equal([SessionUpdateKind.Delta, SessionUpdateKind.Event], _updates.Skip(1).Take(2).Select(u => u.Kind));
    }

    [Fact]
    public void A_failed_join_stops_buffering_and_one_that_failed_for_good_says_why()
    {
        var state = JoinedState(OnePart());
        state.BeginJoin();
        state.ReceiveEvent(Delta(1, 6, "prt_1", 5, "!"), At);

        state.FailJoin(new GatewayException("session_not_found", "gone"), At);

        Assert.False(state.IsJoining);
        Assert.Equal("session_not_found", state.View.JoinError?.Code);
        Assert.Equal(SessionUpdateKind.JoinFailed, _updates[^1].Kind);
        Assert.Equal(5, state.View.Seq);
    }

    [Fact]
    public void Unchanged_messages_keep_their_objects_across_updates()
    {
        var state = JoinedState(Snapshot(1, 1, [Message("msg_1", "user", Text("prt_1", "hi")), Message("msg_2", "assistant", Text("prt_2", "", "msg_2"))]));
        var before = state.View;

        state.ReceiveEvent(Delta(1, 2, "prt_2", 0, "hello", messageId: "msg_2"), At);

        Assert.Same(before.Messages[0], state.View.Messages[0]);
        Assert.NotSame(before.Messages[1], state.View.Messages[1]);
        Assert.Empty(state.View.Part("prt_2")!.GapsOf());
    }
}
