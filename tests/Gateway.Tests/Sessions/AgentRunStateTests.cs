using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
using OpencodeGateway.History.Internal;

namespace Gateway.Tests.Sessions;

/// <summary>
/// The live state of a real agent run: a tool part's output streamed as positioned deltas (and copies for the completed
/// part), what descendants wait for on their ancestors, questions, descendants, and the snapshot's window of messages.
/// </summary>
public class AgentRunStateTests
{
    private const string Root = "ses_root000000001";
    private const string Child = "ses_child00000001";
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);
    private static readonly JsonElement Busy = Json(new { type = "busy" });

    private static LiveSession NewSession(string id = Root, LiveStateMirror? mirror = null) => new(new SessionKey("local", id), 7, 100_000, long.MaxValue, 0, mirror);

    private static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value, Web);

    private static List<SessionEvent> Apply(LiveSession live, UpstreamEvent e)
    {
        var output = new List<SessionEvent>();
        live.Apply(e, output);
        return output;
    }

    private static UpstreamEvent Tool(string status, string? streamed, string? output = null, string partId = "prt_t") => new()
    {
        Kind = UpstreamEventKind.PartUpdated, SessionId = Root, MessageId = "msg_1", PartId = partId, Size = 100,
        Payload = Json(new
        {
            id = partId, messageID = "msg_1", sessionID = Root, type = "tool", tool = "bash",
            state = output is null
                ? (object)new { status, input = new { command = "x" }, metadata = streamed is null ? null : new { output = streamed } }
                : new { status, input = new { command = "x" }, output, metadata = new { output = streamed, exit = 0 } },
        }),
    };

    /// <summary>What a compact client holds: the part field texts it was given, by handle, applied by the client rules.</summary>
    private sealed class CompactClient
    {
        private readonly Dictionary<int, string> _fields = [];
        public JsonObject? Part { get; private set; }

        public void Apply(SessionEvent evt)
        {
            if (evt is { Handle: { } h, Offset: { } offset, Delta: { } delta, Type: SessionEventTypes.PartUpdated })
            {
                // Sent as D: the client applies the delta on the field the handle names.
                Assert.Equal(_fields[h].Length, offset);
                _fields[h] += delta;
                Set(Part!, evt.Field!, _fields[h]);
                return;
            }

            // Sent whole, without the copied fields (the broadcaster's compact form).
            var part = JsonNode.Parse(PartFields.Without(evt.Part!.Value, [.. (evt.Copies ?? new Dictionary<string, int>()).Keys]).GetRawText())!.AsObject();
            foreach (var (field, source) in evt.Copies ?? new Dictionary<string, int>())
            {
                Set(part, field, _fields[source]);
            }

            foreach (var (field, handle) in evt.Handles ?? new Dictionary<string, int>())
            {
                _fields[handle] = Get(part, field)!;
            }

            Part = part;
        }

        private static string? Get(JsonObject part, string path) => path.Split('.').Aggregate((JsonNode?)part, (n, name) => n?[name])?.GetValue<string>();

        private static void Set(JsonObject part, string path, string value)
        {
            var names = path.Split('.');
            var current = part;
            foreach (var name in names[..^1])
            {
                current = current[name] as JsonObject ?? (JsonObject)(current[name] = new JsonObject());
            }

            current[names[^1]] = value;
        }
    }

    [Fact]
    public void A_tools_growing_output_becomes_deltas_and_its_completion_copies_what_clients_hold()
    {
        var live = NewSession();
        var client = new CompactClient();
        var lines = new List<string>();
        var first = Apply(live, Tool("running", "")).Single();
        Assert.Null(first.Delta);
        Assert.Equal([StreamedFields.ToolMetadataOutput], first.Handles!.Keys);
        client.Apply(first);
        var output = "";
        for (var i = 1; i <= 50; i++)
        {
            output += $"line {i}\n";
            var evt = Apply(live, Tool("running", output)).Single();
            Assert.Equal((StreamedFields.ToolMetadataOutput, output.Length - $"line {i}\n".Length, $"line {i}\n"), (evt.Field, evt.Offset!.Value, evt.Delta));
            Assert.Equal(first.Handles[StreamedFields.ToolMetadataOutput], evt.Handle);
            // The full form keeps the whole part.
            Assert.Equal(output, evt.Part!.Value.GetProperty("state").GetProperty("metadata").GetProperty("output").GetString());
            client.Apply(evt);
            lines.Add(evt.Delta!);
        }

        var completed = Apply(live, Tool("completed", output, output)).Single();
        Assert.Null(completed.Delta);
        var metadataHandle = first.Handles[StreamedFields.ToolMetadataOutput];
        Assert.Equal(new Dictionary<string, int> { [StreamedFields.ToolMetadataOutput] = metadataHandle, [StreamedFields.ToolOutput] = metadataHandle },
            completed.Copies);
        var compactPart = PartFields.Without(completed.Part!.Value, [.. completed.Copies!.Keys]);
        Assert.True(compactPart.GetRawText().Length < 300, compactPart.GetRawText());
        client.Apply(completed);
        Assert.Equal(output, client.Part!["state"]!["output"]!.GetValue<string>());
        Assert.Equal(output, client.Part["state"]!["metadata"]!["output"]!.GetValue<string>());
        Assert.Equal(0, client.Part["state"]!["metadata"]!["exit"]!.GetValue<int>());
    }

    [Fact]
    public void A_rewritten_or_shrunk_output_is_sent_whole_and_a_dropped_field_is_gone()
    {
        var mirror = new LiveStateMirror();
        var live = NewSession(mirror: mirror);
        mirror.TakeChanges(live);
        Apply(live, Tool("running", "abc"));
        mirror.TakeChanges(live);
        var rewritten = Apply(live, Tool("running", "xyz")).Single();
        Assert.Null(rewritten.Delta);
        Assert.Null(rewritten.Copies);
        var shrunk = Apply(live, Tool("running", "x")).Single();
        Assert.Null(shrunk.Delta);
        Assert.False(mirror.TakeChanges(live).Full);

        // opencode's error state has no metadata: the field is gone, and the shared store gets the whole state again.
        var failed = Apply(live, Tool("error", streamed: null)).Single();
        Assert.Null(failed.Delta);
        Assert.Null(failed.Handles);
        Assert.True(mirror.TakeChanges(live).Full);
        Assert.Empty(live.CreateImage().Parts["prt_t"].Fields);
    }

    [Fact]
    public void An_update_that_changes_more_than_the_output_is_whole_even_when_the_output_grew()
    {
        var live = NewSession();
        Apply(live, Tool("running", "a"));
        var both = Apply(live, Tool("completed", "ab", "ab")).Single();
        Assert.Null(both.Delta);
        // The new output is not what clients hold: it is in the part, not copied.
        Assert.Null(both.Copies);
        Assert.Equal(2, both.Handles!.Count);
    }

    [Fact]
    public void After_a_break_a_tool_part_is_opencodes_stored_one_and_its_next_update_is_whole()
    {
        var live = NewSession();
        Apply(live, Tool("running", "line 1\n"));
        live.BeginEpoch(8, []);
        // Meanwhile (nobody read the stream) the tool ran on and completed: opencode stored it.
        var stored = Tool("completed", "line 1\nline 2\n", "line 1\nline 2\n").Payload;
        var snapshot = live.CreateImage().ToSnapshot(new SessionRestState(Json(new { id = Root }), [new MessageWithParts(
            Json(new { id = "msg_1", sessionID = Root, role = "assistant" }), [stored])], null, Busy, [], 0), null, 20, OpencodeClient.MessageCursor);
        Assert.Equal(stored.GetRawText(), snapshot.Messages.Single().Parts.Single().GetRawText());
        var next = Apply(live, Tool("completed", "line 1\nline 2\n", "line 1\nline 2\n")).Single();
        Assert.Null(next.Delta);
        Assert.Equal(2, next.Handles!.Count);
    }

    [Fact]
    public void A_descendants_requests_and_title_and_status_reach_the_ancestor_once_each()
    {
        var root = NewSession();
        var asked = new UpstreamEvent
        {
            Kind = UpstreamEventKind.PermissionAsked, SessionId = Child, RequestId = "per_1", Size = 100,
            Payload = Json(new { id = "per_1", sessionID = Child, permission = "bash" }),
        };
        var output = new List<SessionEvent>();
        root.ApplyFromDescendant(asked, Child, child: null, output);
        var forwarded = Assert.Single(output);
        Assert.Equal((SessionEventTypes.PermissionAsked, Child, Root, 1L), (forwarded.Type, forwarded.ChildSessionId, forwarded.SessionId, forwarded.Seq));

        var info = new UpstreamEvent { Kind = UpstreamEventKind.SessionUpdated, SessionId = Child, ParentId = Root, Payload = Json(new { id = Child }) };
        var child = new ChildSession(Child, Root, "sub task", Json(new { type = "idle" }));
        output.Clear();
        root.ApplyFromDescendant(info, Child, child, output);
        root.ApplyFromDescendant(info, Child, child, output); // opencode re-sends the info for its cost: nothing new here
        Assert.Equal(child, Assert.Single(output).Child);
        output.Clear();
        root.ApplyFromDescendant(new UpstreamEvent { Kind = UpstreamEventKind.Status, SessionId = Child, Payload = Busy }, Child,
            child with { Status = Busy }, output);
        Assert.Equal("busy", Assert.Single(output).Child!.Status.GetProperty("type").GetString());

        var image = root.CreateImage();
        Assert.Equal(["per_1"], image.Permissions.Pending.Keys);
        Assert.Equal("busy", image.Children.Single().Status.GetProperty("type").GetString());
        output.Clear();
        root.ApplyFromDescendant(new UpstreamEvent { Kind = UpstreamEventKind.PermissionReplied, SessionId = Child, RequestId = "per_1", Reply = "once" },
            Child, null, output);
        Assert.Equal((SessionEventTypes.PermissionReplied, "per_1", Child), (output[0].Type, output[0].RequestId, output[0].ChildSessionId));
        Assert.Empty(root.CreateImage().Permissions.Pending);

        // A new epoch forgets them: opencode's REST state is fresher.
        root.BeginEpoch(8, output);
        Assert.Empty(root.CreateImage().Children);
    }

    [Fact]
    public void Questions_are_pending_until_answered_or_dismissed_and_their_answers_name_them()
    {
        var live = NewSession();
        UpstreamEvent Question(UpstreamEventKind kind, string id, JsonElement payload = default) =>
            new() { Kind = kind, SessionId = Root, RequestId = id, Payload = payload, Size = 50 };
        Apply(live, Question(UpstreamEventKind.QuestionAsked, "que_1", Json(new { id = "que_1", sessionID = Root, questions = Array.Empty<object>() })));
        Apply(live, Question(UpstreamEventKind.QuestionAsked, "que_2", Json(new { id = "que_2", sessionID = Root, questions = Array.Empty<object>() })));
        var replied = Apply(live, Question(UpstreamEventKind.QuestionReplied, "que_1", Json(new[] { new[] { "Red" } }))).Single();
        Assert.Equal(SessionEventTypes.QuestionReplied, replied.Type);
        Assert.Equal("""{"id":"que_1","sessionID":"ses_root000000001","answers":[["Red"]]}""", replied.Question!.Value.GetRawText());
        var rejected = Apply(live, Question(UpstreamEventKind.QuestionRejected, "que_2")).Single();
        Assert.Equal("""{"id":"que_2","sessionID":"ses_root000000001"}""", rejected.Question!.Value.GetRawText());

        // The snapshot: opencode's list corrected by what this epoch saw (que_1 answered here, que_3 only in opencode's list).
        var stored = new SessionRestState(Json(new { id = Root }), [], null, Busy, [], 0)
        {
            Questions = [Json(new { id = "que_1", sessionID = Root }), Json(new { id = "que_3", sessionID = Child })],
        };
        var snapshot = live.CreateImage().ToSnapshot(stored, null, 20, OpencodeClient.MessageCursor);
        Assert.Equal(["que_3"], snapshot.Questions.Select(q => q.GetProperty("id").GetString()));
    }

    [Fact]
    public void A_snapshot_holds_the_newest_messages_and_a_cursor_before_the_oldest_it_holds()
    {
        var live = NewSession();
        var stored = Enumerable.Range(1, 30).Select(i => new MessageWithParts(
            Json(new { id = $"msg_{i:D3}", sessionID = Root, role = "user", time = new { created = 1000 + i } }), [])).ToList();
        // The live state of a long epoch knows more messages than the window: the newest ones are kept.
        for (var i = 31; i <= 35; i++)
        {
            Apply(live, new UpstreamEvent
            {
                Kind = UpstreamEventKind.MessageUpdated, SessionId = Root, MessageId = $"msg_{i:D3}", Size = 10,
                Payload = Json(new { id = $"msg_{i:D3}", sessionID = Root, role = "assistant", time = new { created = 1000 + i } }),
            });
        }

        var snapshot = live.CreateImage().ToSnapshot(new SessionRestState(Json(new { id = Root }), stored, null, Busy, [], 0), null, 20,
            OpencodeClient.MessageCursor);
        Assert.Equal(Enumerable.Range(16, 20).Select(i => $"msg_{i:D3}"), snapshot.Messages.Select(m => m.Info.GetProperty("id").GetString()));
        Assert.True(OpencodeClient.TryReadMessageCursor(snapshot.Earlier!.Cursor, out var before));
        Assert.Equal("msg_016", before);

        // All of it fits: no cursor unless opencode said there are older ones.
        var all = live.CreateImage().ToSnapshot(new SessionRestState(Json(new { id = Root }), stored.Take(3).ToList(), null, Busy, [], 0), null, 20,
            OpencodeClient.MessageCursor);
        Assert.Null(all.Earlier);
        var older = live.CreateImage().ToSnapshot(new SessionRestState(Json(new { id = Root }), stored.Skip(25).ToList(), null, Busy, [], 0)
            { EarlierCursor = "opencode's" }, null, 20, OpencodeClient.MessageCursor);
        Assert.True(OpencodeClient.TryReadMessageCursor(older.Earlier!.Cursor, out var oldest));
        Assert.Equal("msg_026", oldest);
    }

    [Fact]
    public void Cursors_that_are_not_the_gateways_are_refused()
    {
        Assert.True(OpencodeClient.TryReadMessageCursor(OpencodeClient.MessageCursor("msg_1", 5), out var id));
        Assert.Equal("msg_1", id);
        Assert.False(OpencodeClient.TryReadMessageCursor("not-a-cursor", out _));
        Assert.False(OpencodeClient.TryReadMessageCursor(Convert.ToBase64String("""{"id":"ses_1","time":1}"""u8), out _));
        Assert.False(OpencodeClient.TryReadMessageCursor(new string('A', 600), out _));
    }
}
