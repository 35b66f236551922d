using System.Text.Json;
using OpencodeGateway.Client;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Testing;
using OpencodeGateway.Tests.Fixtures;

namespace OpencodeGateway.Tests;

public class LiveSessionTests
{
    private const string Session = "ses_e02d88428ffekWX1w9mH7ak34F";
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);
    private static readonly JsonElement Idle = ToJson(new { type = "idle" });

    private static LiveSession NewSession(long epoch = 7, int maxEvents = 100_000) =>
        new(new SessionKey("local", Session), epoch, maxEvents, long.MaxValue, 0);

    private static List<UpstreamEvent> SessionEvents(string file = "global-event.sse") =>
        CapturedStreams.Normalized(file).Where(e => e.SessionId == Session).ToList();

    private static JsonElement ToJson(object value) => JsonSerializer.SerializeToElement(value, Web);

    private static List<SessionEvent> Apply(LiveSession live, UpstreamEvent e)
    {
        var output = new List<SessionEvent>();
        live.Apply(e, output);
        return output;
    }

    private static SessionEvent? ApplyOne(LiveSession live, UpstreamEvent e) => Apply(live, e).SingleOrDefault();

    /// <summary>What opencode's REST API shows after the first <paramref name="count"/> events: parts as last updated, no deltas.</summary>
    private static List<MessageWithParts> Stored(List<UpstreamEvent> events, int count)
    {
        var infos = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
        var parts = new SortedDictionary<string, (string MessageId, JsonElement Part)>(StringComparer.Ordinal);
        foreach (var e in events.Take(count))
        {
            if (e.Kind == UpstreamEventKind.MessageUpdated)
            {
                infos[e.MessageId!] = e.Payload;
            }
            else if (e.Kind == UpstreamEventKind.PartUpdated)
            {
                parts[e.PartId!] = (e.MessageId!, e.Payload);
            }
        }

        return infos.Select(i => new MessageWithParts(i.Value, parts.Values.Where(p => p.MessageId == i.Key).Select(p => p.Part).ToList())).ToList();
    }

    private static SessionSnapshot Snapshot(LiveSession live, IReadOnlyList<MessageWithParts> stored, JsonElement? status = null) =>
        live.CreateImage().ToSnapshot(new SessionRestState(ToJson(new { id = Session }), stored, null, status ?? Idle, [], 0), metadata: null,
            maxMessages: 1000, OpencodeClient.MessageCursor);

    /// <summary>What opencode's <c>GET /session/status</c> says after the first <paramref name="count"/> events.</summary>
    private static JsonElement StoredStatus(List<UpstreamEvent> events, int count) =>
        events.Take(count).LastOrDefault(e => e.Kind == UpstreamEventKind.Status)?.Payload ?? Idle;

    private static string ExpectedFinalText(List<UpstreamEvent> events)
    {
        var client = new RulesClient();
        client.Take(Snapshot(NewSession(), Stored(events, events.Count)));
        return client.Recorder.AllText();
    }

    /// <summary>opencode's final text of each part, from the whole captured stream.</summary>
    private static Func<string, string?> FinalTexts(List<UpstreamEvent> events)
    {
        var texts = Stored(events, events.Count).SelectMany(m => m.Parts)
            .Where(p => p.TryGetProperty("text", out _))
            .ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("text").GetString()!);
        return id => texts.GetValueOrDefault(id);
    }

    [Fact]
    public void Seq_counts_every_emitted_event_without_gaps_and_offsets_position_each_delta()
    {
        var live = NewSession();
        var emitted = SessionEvents().SelectMany(e => Apply(live, e)).ToList();
        Assert.DoesNotContain(emitted, e => e.Type == SessionEventTypes.PartGap);
        Assert.Equal(Enumerable.Range(1, emitted.Count).Select(i => (long)i), emitted.Select(e => e.Seq));
        Assert.All(emitted, e => Assert.Equal(7, e.Epoch));

        foreach (var part in emitted.Where(e => e.Type == SessionEventTypes.PartDelta).GroupBy(e => e.PartId))
        {
            var length = 0;
            foreach (var delta in part)
            {
                Assert.Equal(length, delta.Offset);
                length += delta.Delta!.Length;
            }
        }
    }

    [Fact]
    public void Repeated_busy_statuses_are_sent_once()
    {
        var live = NewSession();
        var statuses = SessionEvents().SelectMany(e => Apply(live, e)).Where(e => e.Type == SessionEventTypes.Status)
            .Select(e => e.Status!.Value.GetProperty("type").GetString()).ToList();
        for (var i = 1; i < statuses.Count; i++)
        {
            Assert.NotEqual(statuses[i - 1], statuses[i]);
        }

        Assert.Equal("idle", statuses[^1]);
    }

    [Fact]
    public void A_client_following_every_event_ends_with_the_stored_text()
    {
        var events = SessionEvents();
        var live = NewSession();
        var client = new RulesClient();
        client.Take(Snapshot(live, []));
        foreach (var evt in events.SelectMany(e => Apply(live, e)))
        {
            client.Apply(evt);
        }

        Assert.Equal(ExpectedFinalText(events), client.Recorder.AllText());
        Assert.Contains("t1 t2 t3", client.Recorder.AllText(), StringComparison.Ordinal);
        Assert.Empty(client.Recorder.ShownTextViolations(FinalTexts(events)));
    }

    [Theory]
    [InlineData(0.1, 0)]
    [InlineData(0.3, 0)]
    [InlineData(0.5, 0)]
    [InlineData(0.5, 20)]
    [InlineData(0.7, 5)]
    [InlineData(0.9, 40)]
    public void A_client_joining_mid_stream_ends_with_the_stored_text(double cut, int restLag)
    {
        // The snapshot is built from opencode's REST answer (empty in-flight text, possibly older than the live state
        // by restLag events) overlaid with the gateway's live state at the cut.
        var events = SessionEvents();
        var at = (int)(events.Count * cut);
        var live = NewSession();
        var sent = new List<SessionEvent>();
        for (var i = 0; i < at; i++)
        {
            sent.AddRange(Apply(live, events[i]));
        }

        var snapshot = Snapshot(live, Stored(events, Math.Max(0, at - restLag)));
        var client = new RulesClient();
        client.Take(snapshot);
        // Events already in the snapshot may still arrive through the group: they must be ignored.
        foreach (var evt in sent.TakeLast(5))
        {
            client.Apply(evt, SessionUpdateKind.Duplicate);
        }

        for (var i = at; i < events.Count; i++)
        {
            foreach (var evt in Apply(live, events[i]))
            {
                client.Apply(evt);
            }
        }

        Assert.Equal(ExpectedFinalText(events), client.Recorder.AllText());
        Assert.Empty(client.Recorder.ShownTextViolations(FinalTexts(events)));
    }

    [Fact]
    public void Snapshot_mid_stream_holds_the_text_streamed_so_far()
    {
        var events = SessionEvents();
        var firstDelta = events.FindIndex(e => e.Kind == UpstreamEventKind.PartDelta);
        var live = NewSession();
        foreach (var e in events.Take(firstDelta + 10))
        {
            Apply(live, e);
        }

        var client = new RulesClient();
        client.Take(Snapshot(live, Stored(events, firstDelta + 10)));
        Assert.Contains("t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 ", client.Recorder.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_delta_for_a_part_never_announced_is_marked_as_following_a_gap_until_opencode_restates_it()
    {
        var live = NewSession();
        var first = Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = "t635 " });
        Assert.Equal([SessionEventTypes.PartGap, SessionEventTypes.PartDelta], first.Select(e => e.Type));
        Assert.Equal((0, "text"), (first[0].Offset, first[0].Field));
        Assert.Equal((1L, 2L), (first[0].Seq, first[1].Seq));
        Assert.Equal(0, first[1].Offset);

        // opencode's in-flight copy says "": clients keep the fragment and its gap.
        var inFlight = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "", time = new { start = 1 } });
        var update = ApplyOne(live, new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = inFlight })!;
        Assert.False(update.Part!.Value.TryGetProperty("text", out _));
        Assert.Equal(5, ApplyOne(live, new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = "t636 " })!.Offset);

        var snapshot = Snapshot(live, []);
        Assert.Equal("t635 t636 ", snapshot.Messages.Single().Parts.Single().GetProperty("text").GetString());
        Assert.Equal([0], snapshot.Gaps!["prt_1"]["text"]);
        Assert.Equal("text", snapshot.Messages.Single().Parts.Single().GetProperty("type").GetString());

        // The final update restates the whole text: the gap is closed.
        var final = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "t634 t635 t636 ", time = new { start = 1, end = 2 } });
        var restated = ApplyOne(live, new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = final })!;
        Assert.Equal("t634 t635 t636 ", restated.Part!.Value.GetProperty("text").GetString());
        Assert.Null(Snapshot(live, []).Gaps);
    }

    [Fact]
    public void The_final_update_is_authoritative_even_when_it_differs_from_the_deltas()
    {
        var live = NewSession();
        var start = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "", time = new { start = 1 } });
        Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = start });
        Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = "abc  " });
        var final = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "abc", time = new { start = 1, end = 2 } });
        var update = ApplyOne(live, new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = final })!;
        Assert.Equal("abc", update.Part!.Value.GetProperty("text").GetString());
        Assert.Equal("abc", Snapshot(live, []).Messages.Single().Parts.Single().GetProperty("text").GetString());
    }

    [Fact]
    public void Old_shape_updates_with_a_delta_become_positioned_deltas_not_full_text()
    {
        var live = NewSession();
        var text = "";
        var sent = new List<SessionEvent>();
        for (var i = 1; i <= 50; i++)
        {
            var delta = $"t{i} ";
            text += delta;
            var part = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text, time = new { start = 1 } });
            sent.AddRange(Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = part, Delta = delta }));
        }

        Assert.Equal(49, sent.Count(e => e.Type == SessionEventTypes.PartDelta));
        // What clients receive grows with the answer, not with its square.
        var bytes = sent.Sum(e => JsonSerializer.SerializeToUtf8Bytes(e, Web).Length);
        Assert.True(bytes < 50 * 250, $"{bytes} bytes for 50 tokens");
        Assert.Equal(text, Snapshot(live, []).Messages.Single().Parts.Single().GetProperty("text").GetString());
    }

    [Fact]
    public void A_new_epoch_keeps_streamed_text_marks_where_it_may_be_missing_and_forgets_the_rest()
    {
        var events = SessionEvents();
        var live = NewSession(epoch: 1);
        // Up to the middle of the long answer (the last text part of the capture).
        var longPart = events.Last(e => e.Kind == UpstreamEventKind.PartDelta).PartId;
        var cut = events.FindIndex(e => e.PartId == longPart && e.Kind == UpstreamEventKind.PartDelta) + 100;
        foreach (var e in events.Take(cut))
        {
            Apply(live, e);
        }

        var before = Snapshot(live, Stored(events, cut));
        var streamed = before.Messages.SelectMany(m => m.Parts).Single(p => p.GetProperty("id").GetString() == longPart).GetProperty("text").GetString()!;
        Assert.StartsWith("t1 t2 t3", streamed, StringComparison.Ordinal);

        var output = new List<SessionEvent>();
        live.BeginEpoch(2, output);
        var started = Assert.Single(output);
        Assert.Equal((2L, 1L, SessionEventTypes.EpochStarted), (started.Epoch, started.Seq, started.Type));
        Assert.Equal(1, live.Replay.Count);
        Assert.Null(live.Status);

        // opencode's REST shows the in-flight part as "": the snapshot of the new epoch keeps the text and marks its end.
        var after = Snapshot(live, Stored(events, cut), StoredStatus(events, cut));
        var parts = after.Messages.SelectMany(m => m.Parts).ToDictionary(p => p.GetProperty("id").GetString()!);
        Assert.Equal(streamed, parts[longPart!].GetProperty("text").GetString());
        Assert.Equal([streamed.Length], after.Gaps![longPart!]["text"]);
        // Parts that had ended carry no gap.
        Assert.Single(after.Gaps);

        // What follows the gap is appended after it; the final update restates the whole text.
        var next = Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = parts[longPart!].GetProperty("messageID").GetString(), PartId = longPart, Field = "text", Delta = "t400 " });
        Assert.Equal(streamed.Length, Assert.Single(next).Offset);
    }

    [Fact]
    public void A_part_that_ended_during_a_gap_is_shown_whole_from_opencode_not_from_the_fragment()
    {
        var events = SessionEvents();
        var longPart = events.Last(e => e.Kind == UpstreamEventKind.PartDelta).PartId;
        var cut = events.FindIndex(e => e.PartId == longPart && e.Kind == UpstreamEventKind.PartDelta) + 100;
        var live = NewSession(epoch: 1);
        foreach (var e in events.Take(cut))
        {
            Apply(live, e);
        }

        live.BeginEpoch(2, []);
        // The answer ended while nobody read the stream: opencode stores the whole part.
        var snapshot = Snapshot(live, Stored(events, events.Count));
        var client = new RulesClient();
        client.Take(snapshot);
        Assert.Equal(ExpectedFinalText(events), client.Recorder.AllText());
        Assert.Null(snapshot.Gaps);
    }

    [Theory]
    [InlineData(0.3, 0.05)]
    [InlineData(0.5, 0.1)]
    [InlineData(0.8, 0.02)]
    public void Clients_through_a_cut_stream_never_show_a_fragment_as_the_text(double cutAt, double lost)
    {
        // A watcher follows from the start; the upstream stream breaks at cutAt and the events in the next `lost`
        // share are gone; the new epoch's snapshot (REST state at that moment) is pushed before its events.
        var events = SessionEvents();
        var cut = (int)(events.Count * cutAt);
        var resume = cut + (int)(events.Count * lost);
        var live = NewSession(epoch: 1);
        var client = new RulesClient();
        client.Take(Snapshot(live, []));
        foreach (var evt in events.Take(cut).SelectMany(e => Apply(live, e)))
        {
            client.Apply(evt);
        }

        live.BeginEpoch(2, []);
        client.Take(Snapshot(live, Stored(events, resume), StoredStatus(events, resume)));
        foreach (var evt in events.Skip(resume).SelectMany(e => Apply(live, e)))
        {
            client.Apply(evt);
        }

        Assert.Equal(ExpectedFinalText(events), client.Recorder.AllText());
        Assert.True(client.Recorder.ShownCountOf(StreamedFields.Text) > 0);
        Assert.Empty(client.Recorder.ShownTextViolations(FinalTexts(events)));
    }

    [Fact]
    public void When_opencode_lost_the_rest_of_a_part_and_the_session_is_idle_its_stored_text_wins()
    {
        // opencode restarted mid-answer: the session is idle and its stored part stays "" for good.
        var events = SessionEvents();
        var longPart = events.Last(e => e.Kind == UpstreamEventKind.PartDelta).PartId;
        var cut = events.FindIndex(e => e.PartId == longPart && e.Kind == UpstreamEventKind.PartDelta) + 100;
        var live = NewSession(epoch: 1);
        foreach (var e in events.Take(cut))
        {
            Apply(live, e);
        }

        live.BeginEpoch(2, []);
        var stored = Stored(events, cut);
        var snapshot = Snapshot(live, stored, Idle);
        Assert.Equal("", snapshot.Messages.SelectMany(m => m.Parts).Single(p => p.GetProperty("id").GetString() == longPart).GetProperty("text").GetString());
        Assert.Null(snapshot.Gaps);
        // While opencode still streams it (busy), the gateway's text and its gap are what clients get.
        Assert.NotNull(Snapshot(live, stored, StoredStatus(events, cut)).Gaps);
    }

    [Fact]
    public void The_invariant_check_catches_a_fragment_shown_as_the_whole_text()
    {
        Assert.True(TextInvariant.Holds("t1 t2 ", [], "t1 t2 t3 "));
        Assert.False(TextInvariant.Holds("t443 t444", [], "t1 t2 t443 t444"));
        Assert.True(TextInvariant.Holds("t443 t444", [0], "t1 t2 t443 t444"));
        Assert.True(TextInvariant.Holds("t1 t2 t9 ", [6], "t1 t2 t3 t9 t10 "));
        Assert.False(TextInvariant.Holds("t1 t2 t9 ", [3], "t1 t2 t3 t9 t10 "));
        Assert.False(TextInvariant.Holds("t1 t9 t2 ", [3, 6], "t1 t2 t3 t9 "));
    }

    [Fact]
    public void Permissions_follow_asked_and_replied()
    {
        var live = NewSession();
        var stored = ToJson(new { id = "per_old", sessionID = Session });
        IEnumerable<string?> Pending() => live.CreateImage()
            .ToSnapshot(new SessionRestState(ToJson(new { id = Session }), [], null, Idle, [stored], 0), null, 1000, OpencodeClient.MessageCursor)
            .Permissions.Select(p => p.GetProperty("id").GetString()).Order();
        Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PermissionAsked, SessionId = Session, RequestId = "per_new", Payload = ToJson(new { id = "per_new", sessionID = Session }) });
        Assert.Equal(["per_new", "per_old"], Pending());
        Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PermissionReplied, SessionId = Session, RequestId = "per_old", Reply = "once" });
        Apply(live, new UpstreamEvent { Kind = UpstreamEventKind.PermissionReplied, SessionId = Session, RequestId = "per_new", Reply = "reject" });
        Assert.Empty(Pending());
    }

    /// <summary>
    /// A client following the rules (Gateway.Client's session state) fed the gateway's messages directly, with the tests'
    /// checks at every update.
    /// </summary>
    private sealed class RulesClient
    {
        private readonly SessionState _state;
        private SessionUpdateKind? _last;

        public RulesClient() => _state = new SessionState(Session, positionOnly: false, resumeFrom: null, update =>
        {
            _last = update.Kind;
            Recorder.OnUpdate(null, update);
        });

        public SessionRecorder Recorder { get; } = new();

        /// <summary>The snapshot of a join (the first one) or a pushed one.</summary>
        public void Take(SessionSnapshot snapshot)
        {
            if (_state.View.Ready)
            {
                Assert.Null(_state.ReceiveSnapshot(snapshot, 0));
            }
            else
            {
                _state.BeginJoin();
                Assert.Null(_state.CompleteJoin(new JoinResult
                {
                    Upstream = "local", SessionId = Session, Epoch = snapshot.Epoch, Seq = snapshot.Seq, Recovered = false, Snapshot = snapshot,
                }, 0));
            }

            Assert.Equal(SessionUpdateKind.Snapshot, _last);
        }

        /// <summary>An event the client must take as <paramref name="expected"/> (applied, unless said otherwise) without a rejoin.</summary>
        public void Apply(SessionEvent evt, SessionUpdateKind expected = SessionUpdateKind.Event)
        {
            Assert.Null(_state.ReceiveEvent(evt, 0));
            Assert.Equal(expected, _last);
        }
    }
}
