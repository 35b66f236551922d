using OpencodeGateway.Testing;
using System.Text.Json;
using Gateway.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Contracts;
using OpencodeGateway.Delivery;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;

namespace Gateway.Tests.Sessions.History;

/// <summary>
/// What every <see cref="ISessionHistory"/> must do, run against the single node's <see cref="LocalSessionHistory"/> and
/// the cluster's <see cref="RedisSessionHistory"/> over a real Redis. Events are written as the gateway writes them: the
/// node that reads the upstream's stream sequences them (<see cref="SessionEventDispatcher"/>, which appends to the
/// history); the tests read what the history then serves: <c>since</c>, the head, the live state, watches.
/// What only one implementation does (fencing, another node reading, Redis restarts; nothing outliving the process) is
/// in its own class.
/// </summary>
public abstract class SessionHistorySpec : IAsyncLifetime
{
    private protected const string Upstream = "up";
    private readonly List<HistoryNode> _nodes = [];

    /// <summary>A node of this test's cluster with <paramref name="replay"/>'s bounds.</summary>
    private protected abstract Task<HistoryNode> CreateNodeAsync(ReplayOptions replay);

    /// <summary>
    /// The nodes that serve what <paramref name="writer"/> wrote, each of which the specification holds for: the writer
    /// itself, and in a cluster another node (which reads the shared store, where the writer reads its own state).
    /// </summary>
    private protected abstract Task<IReadOnlyList<HistoryNode>> ReadersAsync(HistoryNode writer);

    /// <summary>
    /// Lets the idle TTL pass for the writer's sessions the way the implementation does it (its node's clock and
    /// eviction; in a cluster also Redis's own clock). The test then waits, with a deadline, for the session to be
    /// forgotten.
    /// </summary>
    private protected abstract Task LetIdleTtlPassAsync(HistoryNode writer, ReplayOptions replay);

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private protected Task<HistoryNode> StartNodeAsync(ReplayOptions? replay = null) => TrackAsync(CreateNodeAsync(replay ?? new ReplayOptions()));

    /// <summary>A node the test created itself, disposed with the others when the test ends.</summary>
    private protected async Task<HistoryNode> TrackAsync(Task<HistoryNode> creating)
    {
        var node = await creating;
        _nodes.Add(node);
        return node;
    }

    private protected static SessionKey NewKey() => new(Upstream, "ses_" + Guid.NewGuid().ToString("N")[..20]);

    private protected static StreamPosition At(StreamPosition head, long seq) => new(head.Epoch, seq);

    // ---------------------------------------------------------------- upstream events, as the normaliser produces them

    private static JsonElement Json(object value) => JsonSerializer.SerializeToElement(value, JsonSerializerOptions.Web);

    private protected static UpstreamEvent MessageUpdated(SessionKey key, string messageId) => new()
    {
        Kind = UpstreamEventKind.MessageUpdated, Type = "message.updated", SessionId = key.SessionId, MessageId = messageId,
        Payload = Json(new { id = messageId, sessionID = key.SessionId, role = "assistant" }), Size = 120,
    };

    /// <summary>A streamed text part announced by opencode (<c>text: ""</c>, started, not ended).</summary>
    private protected static UpstreamEvent PartStarted(SessionKey key, string messageId, string partId) => new()
    {
        Kind = UpstreamEventKind.PartUpdated, Type = "message.part.updated", SessionId = key.SessionId, MessageId = messageId, PartId = partId,
        Payload = Json(new { id = partId, messageID = messageId, sessionID = key.SessionId, type = "text", text = "", time = new { start = 1 } }),
        Size = 160,
    };

    private protected static UpstreamEvent PartEnded(SessionKey key, string messageId, string partId, string text) => new()
    {
        Kind = UpstreamEventKind.PartUpdated, Type = "message.part.updated", SessionId = key.SessionId, MessageId = messageId, PartId = partId,
        Payload = Json(new { id = partId, messageID = messageId, sessionID = key.SessionId, type = "text", text, time = new { start = 1, end = 2 } }),
        Size = 160 + text.Length,
    };

    private protected static UpstreamEvent Delta(SessionKey key, string messageId, string partId, string text) => new()
    {
        Kind = UpstreamEventKind.PartDelta, Type = "message.part.delta", SessionId = key.SessionId, MessageId = messageId, PartId = partId,
        Field = "text", Delta = text, Size = 100 + text.Length,
    };

    private protected static UpstreamEvent Status(SessionKey key, string type) => new()
    {
        Kind = UpstreamEventKind.Status, Type = "session.status", SessionId = key.SessionId, Payload = Json(new { type }), Size = 80,
    };

    /// <summary>
    /// An assistant message streaming one text part: <c>message.updated</c>, <c>part.updated</c>, then deltas
    /// <c>t{first} </c>… (a new session's events are numbered from 1 in this order).
    /// </summary>
    private protected static UpstreamEvent[] Answer(SessionKey key, int deltas, int first = 1) =>
    [
        .. first == 1 ? new[] { MessageUpdated(key, "msg_1"), PartStarted(key, "msg_1", "prt_1") } : [],
        .. Enumerable.Range(first, deltas).Select(n => Delta(key, "msg_1", "prt_1", $"t{n} ")),
    ];

    private protected static string AnswerText(int deltas) => string.Concat(Enumerable.Range(1, deltas).Select(n => $"t{n} "));

    /// <summary>What <see cref="Answer"/>'s events become, from seq 1: (seq, type, delta).</summary>
    private protected static List<(long Seq, string Type, string? Delta)> AnswerEvents(int deltas) =>
    [
        (1, SessionEventTypes.MessageUpdated, null),
        (2, SessionEventTypes.PartUpdated, null),
        .. Enumerable.Range(1, deltas).Select(n => ((long)n + 2, SessionEventTypes.PartDelta, (string?)$"t{n} ")),
    ];

    private protected static List<(long Seq, string Type, string? Delta)> Describe(IEnumerable<SessionEvent> events) =>
        [.. events.Select(e => (e.Seq, e.Type, e.Delta))];

    private protected static string TextOf(LiveSessionImage image, string partId = "prt_1") =>
        image.Parts[partId].Fields.Single(f => f.Name == "text").Text;

    /// <summary>A tool part as opencode sends it on each update: its output so far under <c>state.metadata.output</c>.</summary>
    private protected static UpstreamEvent ToolPart(SessionKey key, string messageId, string partId, string status, string? output, bool completed = false) => new()
    {
        Kind = UpstreamEventKind.PartUpdated, Type = "message.part.updated", SessionId = key.SessionId, MessageId = messageId, PartId = partId,
        Payload = completed
            ? Json(new { id = partId, messageID = messageId, sessionID = key.SessionId, type = "tool", tool = "bash",
                state = new { status, input = new { command = "x" }, output, metadata = new { output, exit = 0 } } })
            : Json(new { id = partId, messageID = messageId, sessionID = key.SessionId, type = "tool", tool = "bash",
                state = new { status, input = new { command = "x" }, metadata = new { output } } }),
        Size = 200 + (output?.Length ?? 0),
    };

    private protected static UpstreamEvent SessionInfo(SessionKey key, string? parentId, string title) => new()
    {
        Kind = UpstreamEventKind.SessionUpdated, Type = "session.updated", SessionId = key.SessionId, ParentId = parentId,
        Payload = Json(new { id = key.SessionId, parentID = parentId, title }), Size = 150,
    };

    private protected static UpstreamEvent Question(SessionKey key, string requestId, UpstreamEventKind kind = UpstreamEventKind.QuestionAsked) => new()
    {
        Kind = kind, Type = kind == UpstreamEventKind.QuestionAsked ? "question.asked" : "question.replied", SessionId = key.SessionId,
        RequestId = requestId, Size = 150,
        Payload = kind == UpstreamEventKind.QuestionAsked
            ? Json(new { id = requestId, sessionID = key.SessionId, questions = new[] { new { question = "Which?", header = "H", options = Array.Empty<object>() } } })
            : Json(new[] { new[] { "Red" } }),
    };

    // ---------------------------------------------------------------- the specification

    [Fact]
    public async Task A_tools_streamed_output_questions_and_descendants_reach_every_readers_image()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var root = NewKey();
        var child = NewKey();
        await node.AppendAsync(
        [
            SessionInfo(root, null, "root"), SessionInfo(child, root.SessionId, "sub task (@general subagent)"),
            MessageUpdated(root, "msg_1"), ToolPart(root, "msg_1", "prt_t", "running", ""), ToolPart(root, "msg_1", "prt_t", "running", "line 1\n"),
            ToolPart(root, "msg_1", "prt_t", "running", "line 1\nline 2\n"),
            Question(child, "que_1"), Question(child, "que_2"), Question(child, "que_1", UpstreamEventKind.QuestionReplied),
        ]);
        foreach (var reader in await ReadersAsync(node))
        {
            var image = (await reader.History.ReadImageAsync(root, CancellationToken.None))!;
            var field = image.Parts["prt_t"].Fields.Single(f => f.Name == StreamedFields.ToolMetadataOutput);
            Assert.Equal("line 1\nline 2\n", field.Text);
            Assert.Equal(["que_2"], image.Questions.Pending.Keys);
            Assert.Contains("que_1", image.Questions.Answered);
            Assert.Equal(child.SessionId, Assert.Single(image.Children).Id);
            Assert.Equal((root.SessionId, "sub task (@general subagent)"), (image.Children[0].ParentId, image.Children[0].Title));
        }

        // Completed: the output repeated as state.output; the part's fields are both known, with their handles.
        await node.AppendAsync([ToolPart(root, "msg_1", "prt_t", "completed", "line 1\nline 2\n", completed: true)]);
        foreach (var reader in await ReadersAsync(node))
        {
            var image = (await reader.History.ReadImageAsync(root, CancellationToken.None))!;
            var fields = image.Parts["prt_t"].Fields.ToDictionary(f => f.Name);
            Assert.Equal("line 1\nline 2\n", fields[StreamedFields.ToolOutput].Text);
            Assert.Equal("line 1\nline 2\n", fields[StreamedFields.ToolMetadataOutput].Text);
            Assert.NotEqual(fields[StreamedFields.ToolOutput].Handle, fields[StreamedFields.ToolMetadataOutput].Handle);
            Assert.Equal("completed", image.Parts["prt_t"].Json!.Value.GetProperty("state").GetProperty("status").GetString());
        }
    }

    [Fact]
    public async Task ReadAfter_returns_exactly_the_events_after_a_position_in_order()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 10));
        var all = AnswerEvents(10);

        foreach (var reader in await ReadersAsync(node))
        {
            var head = (await reader.History.GetHeadAsync(key, CancellationToken.None))!;
            foreach (var since in new long[] { 0, 1, 5, 11 })
            {
                var events = await reader.History.ReadAfterAsync(key, At(head, since), CancellationToken.None);
                Assert.NotNull(events);
                Assert.Equal(all.Skip((int)since), Describe(events));
                Assert.All(events, e => Assert.Equal((head.Epoch, Upstream, key.SessionId), (e.Epoch, e.Upstream, e.SessionId)));
            }

            Assert.Empty((await reader.History.ReadAfterAsync(key, head, CancellationToken.None))!);
            var offsets = (await reader.History.ReadAfterAsync(key, At(head, 2), CancellationToken.None))!.Select(e => e.Offset);
            Assert.Equal(Enumerable.Range(0, 10).Select(n => (int?)AnswerText(n).Length), offsets);
        }
    }

    [Fact]
    public async Task ReadAfter_a_position_it_cannot_serve_returns_null_so_the_caller_resyncs()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 3));

        foreach (var reader in await ReadersAsync(node))
        {
            var history = reader.History;
            var head = (await history.GetHeadAsync(key, CancellationToken.None))!;
            Assert.Null(await history.ReadAfterAsync(key, At(head, head.Seq + 1), CancellationToken.None));
            Assert.Null(await history.ReadAfterAsync(key, At(head, -1), CancellationToken.None));
            Assert.Null(await history.ReadAfterAsync(key, new StreamPosition(head.Epoch - 1, 2), CancellationToken.None));
            Assert.Null(await history.ReadAfterAsync(key, new StreamPosition(head.Epoch + 1, 0), CancellationToken.None));
            Assert.Null(await history.ReadAfterAsync(NewKey(), new StreamPosition(head.Epoch, 0), CancellationToken.None));
        }
    }

    [Fact]
    public async Task The_history_keeps_at_most_MaxEvents_and_says_when_a_position_is_older()
    {
        var node = await StartNodeAsync(new ReplayOptions { MaxEvents = 8 });
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 20));

        foreach (var reader in await ReadersAsync(node))
        {
            var head = (await reader.History.GetHeadAsync(key, CancellationToken.None))!;
            Assert.Equal(22, head.Seq);
            var kept = await reader.History.ReadAfterAsync(key, At(head, head.Seq - 8), CancellationToken.None);
            Assert.Equal(AnswerEvents(20).TakeLast(8), Describe(kept!));
            Assert.Null(await reader.History.ReadAfterAsync(key, At(head, head.Seq - 9), CancellationToken.None));
            Assert.Null(await reader.History.ReadAfterAsync(key, At(head, 0), CancellationToken.None));
        }
    }

    [Fact]
    public async Task The_history_keeps_about_MaxBytes_of_the_latest_events()
    {
        const int deltas = 30, deltaLength = 500;
        var node = await StartNodeAsync(new ReplayOptions { MaxBytes = 4096 });
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync([MessageUpdated(key, "msg_1"), PartStarted(key, "msg_1", "prt_1"),
            .. Enumerable.Range(0, deltas).Select(n => Delta(key, "msg_1", "prt_1", new string((char)('a' + n % 26), deltaLength)))]);

        foreach (var reader in await ReadersAsync(node))
        {
            var head = (await reader.History.GetHeadAsync(key, CancellationToken.None))!;
            var kept = 0;
            while (await reader.History.ReadAfterAsync(key, At(head, head.Seq - kept - 1), CancellationToken.None) is not null)
            {
                kept++;
            }

            // The latest events, as many as fit: each holds 500 characters, and the estimate never undercounts them.
            Assert.InRange(kept, 1, 4096 / deltaLength);
            var latest = (await reader.History.ReadAfterAsync(key, At(head, head.Seq - kept), CancellationToken.None))!;
            Assert.Equal(Enumerable.Range(deltas - kept, kept).Select(n => new string((char)('a' + n % 26), deltaLength)), latest.Select(e => e.Delta));
        }
    }

    [Fact]
    public async Task Head_and_image_follow_the_appended_events()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var key = NewKey();
        var readers = await ReadersAsync(node);
        foreach (var reader in readers)
        {
            Assert.Null(await reader.History.GetHeadAsync(key, CancellationToken.None));
            Assert.Null(await reader.History.ReadImageAsync(key, CancellationToken.None));
        }

        await node.AppendAsync([Status(key, "busy"), .. Answer(key, 3)]);
        foreach (var reader in readers)
        {
            var head = await reader.History.GetHeadAsync(key, CancellationToken.None);
            var image = (await reader.History.ReadImageAsync(key, CancellationToken.None))!;
            Assert.Equal(6, head!.Seq);
            Assert.Equal((head.Epoch, head.Seq), (image.Epoch, image.Seq));
            Assert.Equal("t1 t2 t3 ", TextOf(image));
            Assert.Empty(image.Parts["prt_1"].Fields.Single().Gaps);
            Assert.Equal("assistant", image.Messages["msg_1"].Info!.Value.GetProperty("role").GetString());
            Assert.Equal("busy", image.Status!.Value.GetProperty("type").GetString());
        }

        await node.AppendAsync([Delta(key, "msg_1", "prt_1", "t4"), PartEnded(key, "msg_1", "prt_1", "t1 t2 t3 t4"), Status(key, "idle")]);
        foreach (var reader in readers)
        {
            var image = (await reader.History.ReadImageAsync(key, CancellationToken.None))!;
            Assert.Equal(9, image.Seq);
            Assert.Equal("t1 t2 t3 t4", TextOf(image));
            Assert.Equal("idle", image.Status!.Value.GetProperty("type").GetString());
        }
    }

    [Fact]
    public async Task Ensure_starts_a_session_at_seq_0_once_and_its_events_follow_in_that_epoch()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var readers = await ReadersAsync(node);
        foreach (var ensuring in readers)
        {
            var key = NewKey();
            var ensured = await ensuring.History.EnsureAsync(key, CancellationToken.None);

            Assert.Equal(0, ensured.Seq);
            foreach (var reader in readers)
            {
                Assert.Equal(ensured, await reader.History.EnsureAsync(key, CancellationToken.None));
                Assert.Equal(ensured, await reader.History.GetHeadAsync(key, CancellationToken.None));
                Assert.Empty((await reader.History.ReadAfterAsync(key, ensured, CancellationToken.None))!);
            }

            await node.AppendAsync(Answer(key, 2));

            foreach (var reader in readers)
            {
                Assert.Equal(AnswerEvents(2), Describe((await reader.History.ReadAfterAsync(key, ensured, CancellationToken.None))!));
                Assert.Equal(ensured.Epoch, (await reader.History.GetHeadAsync(key, CancellationToken.None))!.Epoch);
            }
        }
    }

    [Fact]
    public async Task New_epochs_are_greater_than_the_previous_one_and_never_repeat()
    {
        var node = await StartNodeAsync();
        var key = NewKey();
        var epochs = new List<long>();

        foreach (var reader in await ReadersAsync(node))
        {
            var first = await reader.History.NewEpochAsync(key, 0, CancellationToken.None);
            var second = await reader.History.NewEpochAsync(key, first, CancellationToken.None);
            var far = await reader.History.NewEpochAsync(key, 1L << 52, CancellationToken.None);
            Assert.True(first > 0);
            Assert.True(second > first);
            Assert.True(far > 1L << 52);
            epochs.AddRange([first, second, await reader.History.NewEpochAsync(NewKey(), 0, CancellationToken.None)]);
        }

        Assert.Equal(epochs.Count, epochs.Distinct().Count());
    }

    [Fact]
    public async Task A_new_stream_starts_a_new_epoch_that_keeps_the_streamed_text_with_a_gap_where_it_broke()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 3));
        var before = (await node.History.GetHeadAsync(key, CancellationToken.None))!;

        await node.ConnectAsync(); // the upstream's stream broke and was read again: what came in between is unknown
        await node.WrittenAsync();
        var readers = await ReadersAsync(node);
        foreach (var reader in readers)
        {
            var head = (await reader.History.GetHeadAsync(key, CancellationToken.None))!;
            Assert.True(head.Epoch > before.Epoch);
            Assert.Null(await reader.History.ReadAfterAsync(key, before, CancellationToken.None));
            Assert.Equal([(1L, SessionEventTypes.EpochStarted, (string?)null)],
                Describe((await reader.History.ReadAfterAsync(key, At(head, 0), CancellationToken.None))!));
            var image = (await reader.History.ReadImageAsync(key, CancellationToken.None))!;
            Assert.Equal("t1 t2 t3 ", TextOf(image));
            Assert.Equal([9], image.Parts["prt_1"].Fields.Single().Gaps);
        }

        await node.AppendAsync(Answer(key, 1, first: 7));
        foreach (var reader in readers)
        {
            var head = (await reader.History.GetHeadAsync(key, CancellationToken.None))!;
            var delta = Assert.Single((await reader.History.ReadAfterAsync(key, At(head, 1), CancellationToken.None))!);
            Assert.Equal((2L, 9, "t7 "), (delta.Seq, delta.Offset!.Value, delta.Delta));
        }
    }

    [Fact]
    public async Task A_watch_receives_every_appended_event_of_its_session_until_disposed()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        foreach (var reader in await ReadersAsync(node))
        {
            var (key, other) = (NewKey(), NewKey());
            var received = new List<SessionEvent>();
            var kept = new List<SessionEvent>();
            var watch = await reader.History.WatchAsync(key, e => { lock (received) received.Add(e); }, CancellationToken.None);
            await using var keptWatch = await reader.History.WatchAsync(key, e => { lock (kept) kept.Add(e); }, CancellationToken.None);

            await node.AppendAsync(Answer(other, 2));
            await node.AppendAsync(Answer(key, 5));

            // Delivery may repeat an event (the receiver orders by seq and drops what it has): each arrives, none is foreign.
            await Eventually.HoldsAsync(() => Seqs(received).Count == 7, "the watch receives the 7 events");
            Assert.Equal(AnswerEvents(5), Describe(Distinct(received)));
            Assert.All(Snapshot(received), e => Assert.Equal(key.SessionId, e.SessionId));

            await watch.DisposeAsync();
            await node.AppendAsync(Answer(key, 1, first: 6));

            await Eventually.HoldsAsync(() => Seqs(kept).Contains(8), "the other watch receives the next event");
            Assert.DoesNotContain(8, Seqs(received));
        }
    }

    private static List<SessionEvent> Snapshot(List<SessionEvent> events)
    {
        lock (events)
        {
            return [.. events];
        }
    }

    private protected static HashSet<long> Seqs(List<SessionEvent> events) => [.. Snapshot(events).Select(e => e.Seq)];

    private protected static List<SessionEvent> Distinct(List<SessionEvent> events) =>
        [.. Snapshot(events).GroupBy(e => e.Seq).Select(g => g.First()).OrderBy(e => e.Seq)];

    [Fact]
    public async Task The_stream_being_read_is_known_while_it_is_read()
    {
        var node = await StartNodeAsync();
        var readers = await ReadersAsync(node);
        foreach (var reader in readers)
        {
            Assert.Null(await reader.History.ConnectedStreamAsync(Upstream, CancellationToken.None));
        }

        var stream = await node.ConnectAsync();
        foreach (var reader in readers)
        {
            Assert.Equal(stream.Id, await reader.History.ConnectedStreamAsync(Upstream, CancellationToken.None));
        }

        await node.CloseAsync();
        foreach (var reader in readers)
        {
            Assert.Null(await reader.History.ConnectedStreamAsync(Upstream, CancellationToken.None));
        }
    }

    [Fact]
    public async Task A_session_idle_past_its_ttl_is_forgotten_and_starts_afresh_in_a_new_epoch()
    {
        var replay = new ReplayOptions { IdleSessionTtl = TimeSpan.FromMilliseconds(500) };
        var node = await StartNodeAsync(replay);
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 3));
        // Where the node left it (asking the history could already find it forgotten on a busy machine).
        var head = node.Registry.Use(key, s => new StreamPosition(s.Epoch, s.Seq));

        await LetIdleTtlPassAsync(node, replay);

        foreach (var reader in await ReadersAsync(node))
        {
            await Eventually.HoldsAsync(async () => await reader.History.GetHeadAsync(key, CancellationToken.None) is null,
                "the idle session is forgotten");
            Assert.Null(await reader.History.ReadAfterAsync(key, At(head, 0), CancellationToken.None));
            Assert.Null(await reader.History.ReadImageAsync(key, CancellationToken.None));
        }

        var fresh = await node.History.EnsureAsync(key, CancellationToken.None);
        Assert.True(fresh.Epoch > head.Epoch);
        Assert.Equal(0, fresh.Seq);
    }
}

/// <summary>
/// One gateway node's history with what writes to it: its live sessions and the dispatcher that sequences the events of
/// the upstream's stream it reads (under the lease its implementation gives it).
/// </summary>
internal sealed class HistoryNode : IAsyncDisposable
{
    private readonly Func<string, Task<string>> _lease;
    private readonly Func<Task> _written;
    private readonly Func<ValueTask> _dispose;
    private long _connections;

    /// <param name="lease">The lease under which the node reads an upstream's stream (acquired when first asked).</param>
    /// <param name="written">Returns once what was appended is stored.</param>
    public HistoryNode(LiveSessionRegistry registry, ISessionHistory history, TimeProvider time, Func<string, Task<string>> lease,
        Func<Task> written, Func<ValueTask> dispose)
    {
        Registry = registry;
        History = history;
        Time = time;
        _lease = lease;
        _written = written;
        _dispose = dispose;
        // (the spec's events are of root sessions: the tree never asks the upstream)
        var upstreams = new ServiceCollection().AddLogging()
            .AddUpstreams(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gateway:Upstreams:0:Id"] = "u", ["Gateway:Upstreams:0:BaseUrl"] = "http://127.0.0.1:9",
            }).Build())
            .BuildServiceProvider().GetRequiredService<UpstreamRegistry>();
        Dispatcher = new SessionEventDispatcher(registry, history, new SessionTree(upstreams), NullLogger<SessionEventDispatcher>.Instance,
            Options.Create(new StreamingOptions()), time);
    }

    public LiveSessionRegistry Registry { get; }
    public ISessionHistory History { get; }
    public TimeProvider Time { get; }
    public SessionEventDispatcher Dispatcher { get; }
    public UpstreamStream? Stream { get; private set; }

    /// <summary>A new connection of the upstream's stream is read by this node.</summary>
    public async Task<UpstreamStream> ConnectAsync(string upstream = "up")
    {
        Stream = new UpstreamStream(upstream, await _lease(upstream), Interlocked.Increment(ref _connections));
        await Dispatcher.OnStreamConnectedAsync(Stream, CancellationToken.None);
        return Stream;
    }

    public async Task CloseAsync()
    {
        await Dispatcher.OnStreamClosedAsync(Stream!.Upstream, CancellationToken.None);
        Stream = null;
    }

    /// <summary>Events read from the stream, sequenced and appended; returns once they are stored.</summary>
    public async Task AppendAsync(IEnumerable<UpstreamEvent> events)
    {
        await AppendUnwrittenAsync(events);
        await WrittenAsync();
    }

    /// <summary>Events read from the stream, sequenced and appended (the store may not hold them yet).</summary>
    public async Task AppendUnwrittenAsync(IEnumerable<UpstreamEvent> events)
    {
        foreach (var e in events)
        {
            await Dispatcher.OnEventAsync(Stream!, e, CancellationToken.None);
        }
    }

    public Task WrittenAsync() => _written();

    public async ValueTask DisposeAsync()
    {
        Dispatcher.Dispose();
        await _dispose();
    }
}
