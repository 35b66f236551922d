using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Streaming;
using OpencodeGateway.Testing;
using OpencodeGateway.Tests.Fixtures;

namespace OpencodeGateway.Tests;

public class LiveSessionTests
{
    private const string Session = "ses_e02d88428ffekWX1w9mH7ak34F";
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private static LiveSession NewSession(long epoch = 7, int maxEvents = 100_000) => new("local", Session, epoch, maxEvents, long.MaxValue, 0);

    private static List<UpstreamEvent> SessionEvents(string file = "global-event.sse") =>
        CapturedStreams.Normalized(file).Where(e => e.SessionId == Session).ToList();

    private static JsonElement ToJson(object value) => JsonSerializer.SerializeToElement(value, Web);

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

    private static SessionSnapshot Snapshot(LiveSession live, IReadOnlyList<MessageWithParts> stored) => new()
    {
        Upstream = "local", SessionId = Session, Epoch = live.Epoch, Seq = live.Seq, Session = ToJson(new { id = Session }),
        Messages = live.Merge(stored), Status = live.Status ?? ToJson(new { type = "idle" }),
        Permissions = live.MergePermissions([]),
    };

    private static string ExpectedFinalText(List<UpstreamEvent> events)
    {
        var model = new SessionModel();
        var live = NewSession();
        model.ApplySnapshot(ToJson(Snapshot(live, Stored(events, events.Count))));
        return model.AllText();
    }

    [Fact]
    public void Seq_counts_every_emitted_event_without_gaps_and_offsets_position_each_delta()
    {
        var live = NewSession();
        var emitted = SessionEvents().Select(live.Apply).Where(e => e is not null).Select(e => e!).ToList();
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
        var statuses = SessionEvents().Select(live.Apply).Where(e => e?.Type == SessionEventTypes.Status).Select(e => e!.Status!.Value.GetProperty("type").GetString()).ToList();
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
        var model = new SessionModel();
        model.ApplySnapshot(ToJson(Snapshot(live, [])));
        foreach (var e in events)
        {
            if (live.Apply(e) is { } evt)
            {
                Assert.Equal(SessionModel.Outcome.Applied, model.Apply(ToJson(evt)));
            }
        }

        Assert.Equal(ExpectedFinalText(events), model.AllText());
        Assert.Contains("t1 t2 t3", model.AllText(), StringComparison.Ordinal);
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
            if (live.Apply(events[i]) is { } evt)
            {
                sent.Add(evt);
            }
        }

        var snapshot = Snapshot(live, Stored(events, Math.Max(0, at - restLag)));
        var model = new SessionModel();
        model.ApplySnapshot(ToJson(snapshot));
        // Events already in the snapshot may still arrive through the group: they must be ignored.
        foreach (var evt in sent.TakeLast(5))
        {
            Assert.Equal(SessionModel.Outcome.Duplicate, model.Apply(ToJson(evt)));
        }

        for (var i = at; i < events.Count; i++)
        {
            if (live.Apply(events[i]) is { } evt)
            {
                Assert.Equal(SessionModel.Outcome.Applied, model.Apply(ToJson(evt)));
            }
        }

        Assert.Equal(ExpectedFinalText(events), model.AllText());
    }

    [Fact]
    public void Snapshot_mid_stream_holds_the_text_streamed_so_far()
    {
        var events = SessionEvents();
        var firstDelta = events.FindIndex(e => e.Kind == UpstreamEventKind.PartDelta);
        var live = NewSession();
        foreach (var e in events.Take(firstDelta + 10))
        {
            live.Apply(e);
        }

        var model = new SessionModel();
        model.ApplySnapshot(ToJson(Snapshot(live, Stored(events, firstDelta + 10))));
        Assert.Contains("t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 ", model.AllText(), StringComparison.Ordinal);
    }

    [Fact]
    public void Delta_before_its_part_is_kept_and_a_stale_empty_update_does_not_erase_it()
    {
        var live = NewSession();
        var delta = live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = "Hello " })!;
        Assert.Equal(0, delta.Offset);
        var part = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "", time = new { start = 1 } });
        var update = live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = part })!;
        Assert.False(update.Part!.Value.TryGetProperty("text", out _)); // clients keep "Hello "
        var next = live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = "world" })!;
        Assert.Equal(6, next.Offset);

        var merged = live.Merge([]);
        Assert.Equal("Hello world", merged.Single().Parts.Single().GetProperty("text").GetString());
        Assert.Equal("text", merged.Single().Parts.Single().GetProperty("type").GetString());
    }

    [Fact]
    public void The_final_update_is_authoritative_even_when_it_differs_from_the_deltas()
    {
        var live = NewSession();
        live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PartDelta, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = "abc  " });
        var final = ToJson(new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "abc", time = new { start = 1, end = 2 } });
        var update = live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = final })!;
        Assert.Equal("abc", update.Part!.Value.GetProperty("text").GetString());
        Assert.Equal("abc", live.Merge([]).Single().Parts.Single().GetProperty("text").GetString());
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
            sent.Add(live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PartUpdated, SessionId = Session, MessageId = "msg_1", PartId = "prt_1", Payload = part, Delta = delta })!);
        }

        Assert.Equal(49, sent.Count(e => e.Type == SessionEventTypes.PartDelta));
        // What clients receive grows with the answer, not with its square.
        var bytes = sent.Sum(e => JsonSerializer.SerializeToUtf8Bytes(e, Web).Length);
        Assert.True(bytes < 50 * 250, $"{bytes} bytes for 50 tokens");
        Assert.Equal(text, live.Merge([]).Single().Parts.Single().GetProperty("text").GetString());
    }

    [Fact]
    public void Reset_starts_a_new_epoch_with_nothing_known()
    {
        var live = NewSession(epoch: 1);
        foreach (var e in SessionEvents().Take(40))
        {
            live.Apply(e);
        }

        Assert.True(live.Seq > 0);
        live.Reset(2);
        Assert.Equal((2, 0), (live.Epoch, live.Seq));
        Assert.Empty(live.Merge([]));
        Assert.Equal(0, live.Replay.Count);
    }

    [Fact]
    public void Permissions_follow_asked_and_replied()
    {
        var live = NewSession();
        var stored = ToJson(new { id = "per_old", sessionID = Session });
        live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PermissionAsked, SessionId = Session, RequestId = "per_new", Payload = ToJson(new { id = "per_new", sessionID = Session }) });
        Assert.Equal(["per_new", "per_old"], live.MergePermissions([stored]).Select(p => p.GetProperty("id").GetString()).Order());
        live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PermissionReplied, SessionId = Session, RequestId = "per_old", Reply = "once" });
        live.Apply(new UpstreamEvent { Kind = UpstreamEventKind.PermissionReplied, SessionId = Session, RequestId = "per_new", Reply = "reject" });
        Assert.Empty(live.MergePermissions([stored]));
    }
}
