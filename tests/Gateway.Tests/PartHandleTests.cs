using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Tests.Fixtures;
using OpencodeGateway.History.Internal;

namespace OpencodeGateway.Tests;

/// <summary>
/// Part field handles (<see cref="SessionEvent.Handle"/>), given by the sequencer: one per part field, introduced by
/// the event that first names the field and restated by every event about its text, the same in snapshots, kept over
/// an epoch change, never reused.
/// </summary>
public class PartHandleTests
{
    private const string Session = "ses_e02d88428ffekWX1w9mH7ak34F";
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private static LiveSession NewSession() => new(new SessionKey("local", Session), 7, 100_000, long.MaxValue, 0);

    private static List<SessionEvent> Apply(LiveSession live, UpstreamEvent e)
    {
        var output = new List<SessionEvent>();
        live.Apply(e, output);
        return output;
    }

    private static UpstreamEvent Part(string partId, string? text, bool ended = false) => new()
    {
        Kind = UpstreamEventKind.PartUpdated, Type = "message.part.updated", SessionId = Session, MessageId = "msg_1", PartId = partId,
        Payload = JsonSerializer.SerializeToElement(text is null
            ? new Dictionary<string, object> { ["id"] = partId, ["type"] = "tool" }
            : new Dictionary<string, object>
            {
                ["id"] = partId, ["type"] = "text", ["text"] = text,
                ["time"] = ended ? new { start = 1, end = 2 } : (object)new { start = 1 },
            }, Web),
    };

    private static UpstreamEvent Delta(string partId, string delta, string field = "text") => new()
    {
        Kind = UpstreamEventKind.PartDelta, Type = "message.part.delta", SessionId = Session, MessageId = "msg_1", PartId = partId,
        Field = field, Delta = delta,
    };

    private static SessionSnapshot Snapshot(LiveSession live) =>
        live.CreateImage().ToSnapshot(new SessionRestState(JsonSerializer.SerializeToElement(new { id = Session }), [], null,
            JsonSerializer.SerializeToElement(new { type = "busy" }), [], 0), metadata: null, maxMessages: 1000, OpencodeClient.MessageCursor);

    [Fact]
    public void Each_part_field_gets_one_handle_from_the_event_that_introduces_it_and_keeps_it()
    {
        var live = NewSession();
        var announced = Apply(live, Part("prt_a", "")).Single();
        Assert.Equal(1, announced.Handle);
        Assert.All(Apply(live, Delta("prt_a", "one ")), e => Assert.Equal(1, e.Handle));

        // A field never announced: the gap that introduces it carries its handle, then its deltas.
        var unannounced = Apply(live, Delta("prt_b", "two"));
        Assert.Equal([SessionEventTypes.PartGap, SessionEventTypes.PartDelta], unannounced.Select(e => e.Type));
        Assert.All(unannounced, e => Assert.Equal(2, e.Handle));
        Assert.Equal(3, Apply(live, Delta("prt_a", "thought", field: "reasoning")).First().Handle);

        // A part object without text says nothing about a field: no handle. A restatement names the field's handle.
        Assert.Null(Apply(live, Part("prt_c", null)).Single().Handle);
        Assert.Null(Apply(live, Part("prt_a", "")).Single().Handle); // in-flight copy: the text is not restated
        var restated = Apply(live, Part("prt_a", "one two three", ended: true)).Single();
        Assert.NotNull(restated.Part!.Value.GetProperty("text").GetString());
        Assert.Equal(1, restated.Handle);
        Assert.Equal(1, Apply(live, Delta("prt_a", " four")).Single().Handle);

        var snapshot = Snapshot(live);
        Assert.Equal(1, snapshot.Handles!["prt_a"]["text"]);
        Assert.Equal(3, snapshot.Handles["prt_a"]["reasoning"]);
        Assert.Equal(2, snapshot.Handles["prt_b"]["text"]);
        Assert.False(snapshot.Handles.ContainsKey("prt_c"));
        Assert.Null(snapshot.SessionHandle); // the hub sets it for compact connections
    }

    [Fact]
    public void Handles_survive_a_new_epoch_and_are_never_given_twice()
    {
        var live = NewSession();
        Apply(live, Part("prt_a", ""));
        Apply(live, Delta("prt_a", "kept"));
        live.BeginEpoch(8, []);
        Assert.Equal(1, Apply(live, Delta("prt_a", " more")).Single().Handle);
        Assert.Equal(1, Snapshot(live).Handles!["prt_a"]["text"]);
        Assert.Equal(2, Apply(live, Part("prt_new", "")).Single().Handle);
    }

    [Fact]
    public void A_node_taking_over_from_the_shared_store_keeps_every_handle_and_goes_on_counting()
    {
        var mirror = new LiveStateMirror();
        var live = new LiveSession(new SessionKey("local", Session), 7, 100_000, long.MaxValue, 0, mirror);
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        var texts = new Dictionary<string, string>(StringComparer.Ordinal);
        void Store(LiveChanges? changes)
        {
            foreach (var (field, value) in changes!.Sets)
            {
                entries[field] = value;
            }

            foreach (var (text, value) in changes.TextSets)
            {
                texts[text] = value;
            }

            foreach (var (text, value) in changes.TextAppends)
            {
                texts[text] = texts.GetValueOrDefault(text, "") + value;
            }
        }

        Apply(live, Part("prt_a", ""));
        Store(mirror.TakeChanges(live)); // first write: whole
        Apply(live, Delta("prt_a", "one "));
        Apply(live, Delta("prt_b", "two")); // a field added after: written as a change
        Store(mirror.TakeChanges(live));

        var image = LiveStateEntries.Decode(live.Key, live.Epoch, live.Seq, entries, texts);
        var next = LiveSession.FromImage(image, 100_000, long.MaxValue, 0, new LiveStateMirror());
        Assert.Equal(1, Apply(next, Delta("prt_a", "more")).Single().Handle);
        Assert.Equal(2, Apply(next, Delta("prt_b", "more")).Single().Handle);
        Assert.Equal(3, Apply(next, Part("prt_c", "")).Single().Handle);

        // Entries written before handles existed (gaps alone): the fields get handles that were never given.
        entries[LiveStateEntries.TextField("prt_a", "text")] = "[]";
        var oldMirror = new LiveStateMirror();
        var old = LiveSession.FromImage(LiveStateEntries.Decode(live.Key, live.Epoch, live.Seq, entries, texts), 100_000, long.MaxValue, 0, oldMirror);
        Assert.Equal(3, Apply(old, Delta("prt_a", "x")).Single().Handle);
        Assert.Equal(2, Apply(old, Delta("prt_b", "x")).Single().Handle);
        Assert.True(oldMirror.TakeChanges(old).Full); // and the store gets them all
    }

    [Fact]
    public void On_a_captured_opencode_stream_every_delta_names_a_handle_introduced_before_it()
    {
        var live = NewSession();
        var known = new Dictionary<int, (string PartId, string Field)>();
        var deltas = 0;
        foreach (var upstream in CapturedStreams.Normalized("global-event.sse").Where(e => e.SessionId == Session))
        {
            foreach (var evt in Apply(live, upstream))
            {
                // A tool part's update introduces the handles of its streamed fields.
                foreach (var (name, introduced) in evt.Handles ?? new Dictionary<string, int>())
                {
                    Assert.Equal((evt.PartId!, name), known.TryGetValue(introduced, out var named) ? named : known[introduced] = (evt.PartId!, name));
                }

                if (evt.Handle is not { } handle)
                {
                    Assert.NotEqual(SessionEventTypes.PartDelta, evt.Type);
                    continue;
                }

                var field = (evt.PartId!, evt.Field ?? "text");
                if (evt.Type == SessionEventTypes.PartDelta || evt.Delta is not null)
                {
                    deltas++;
                    Assert.True(known.TryGetValue(handle, out var introduced) && introduced == field, $"delta seq {evt.Seq}: handle {handle} not introduced for {field}");
                }

                Assert.Equal(field, known.TryGetValue(handle, out var before) ? before : known[handle] = field);
            }
        }

        Assert.True(deltas > 10);
        Assert.Contains(known.Values, f => f.Field == StreamedFields.ToolMetadataOutput);
        var snapshot = Snapshot(live);
        Assert.Equal(known.Count, snapshot.Handles!.Sum(p => p.Value.Count));
        Assert.All(snapshot.Handles!, p => Assert.All(p.Value, f => Assert.Equal((p.Key, f.Key), known[f.Value])));
    }
}
