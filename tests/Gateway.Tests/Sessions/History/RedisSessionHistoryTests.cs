using OpencodeGateway.Testing;
using Gateway.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Cluster;
using OpencodeGateway.Contracts;
using OpencodeGateway.Leases;
using OpencodeGateway.History;
using OpencodeGateway.History.Internal;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;
using StackExchange.Redis;

namespace Gateway.Tests.Sessions.History;

/// <summary>
/// The history specification on the cluster's history (<see cref="RedisSessionHistory"/>) over a real Redis, plus what
/// only a cluster does: another node (another instance, its own connection) reads and watches what one node wrote;
/// a paused former holder of the upstream's lease can write nothing (fencing); epochs grow cluster-wide; what was read
/// while Redis restarted is written when it is back, with or without its data. Each node holds the upstream's lease
/// (<see cref="RedisUpstreamLeases"/>) when it reads the stream, as the gateway's pump does.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisSessionHistoryTests(RedisFixture redis) : SessionHistorySpec
{
    private readonly string _keyPrefix = RedisFixture.NewKeyPrefix();
    private readonly Dictionary<HistoryNode, HistoryNode> _otherNodes = [];
    private string _endpoint = redis.Endpoint;
    private int _nodes;

    private protected override Task<HistoryNode> CreateNodeAsync(ReplayOptions replay) => CreateRedisNodeAsync(replay);

    // The stream holder answers from its own state (ahead of Redis, and what it delivered); any other node from Redis.
    private protected override async Task<IReadOnlyList<HistoryNode>> ReadersAsync(HistoryNode writer)
    {
        if (!_otherNodes.TryGetValue(writer, out var other))
        {
            _otherNodes[writer] = other = await StartNodeAsync();
        }

        return [writer, other];
    }

    // Redis expires the session's keys by itself; the holder's node forgets it through its idle eviction, on its clock.
    private protected override Task LetIdleTtlPassAsync(HistoryNode writer, ReplayOptions replay) =>
        Eventually.HoldsAsync(() =>
        {
            writer.Registry.EvictIdle(_ => false); // what IdleSessionEvictionService does for sessions nobody on the node watches
            return writer.Registry.Count == 0;
        }, "the holder's node forgets its idle sessions");

    /// <param name="leaseTime">The clock of the node's leases (a paused node: a clock that stands still).</param>
    private async Task<HistoryNode> CreateRedisNodeAsync(ReplayOptions? replay = null, TimeProvider? leaseTime = null,
        Action<ClusterOptions>? configure = null, ILogger<RedisSessionHistory>? log = null)
    {
        replay ??= new ReplayOptions();
        var options = RedisFixture.Cluster(_endpoint, _keyPrefix, $"node{++_nodes}");
        configure?.Invoke(options);
        var connection = await RedisFixture.ConnectNodeAsync(options);
        var registry = new LiveSessionRegistry(Options.Create(replay), new EpochSource(TimeProvider.System), TimeProvider.System) { NewObserver = () => new LiveStateMirror() };
        var history = new RedisSessionHistory(connection, registry, Options.Create(options), Options.Create(replay), TimeProvider.System,
            log ?? NullLogger<RedisSessionHistory>.Instance);
        await history.StartAsync(CancellationToken.None);
        var leases = new RedisUpstreamLeases(connection, Options.Create(options), leaseTime ?? TimeProvider.System,
            NullLogger<RedisUpstreamLeases>.Instance);
        var held = new Dictionary<string, IUpstreamLease>(StringComparer.Ordinal);
        return new HistoryNode(registry, history, TimeProvider.System,
            async upstream =>
            {
                if (!held.TryGetValue(upstream, out var lease))
                {
                    held[upstream] = lease = await leases.AcquireAsync(upstream, CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
                }

                return lease.Value;
            },
            () => Eventually.HoldsAsync(() => history.Pending == 0, "the history wrote what was appended", TimeSpan.FromSeconds(20)),
            async () =>
            {
                foreach (var lease in held.Values)
                {
                    await lease.DisposeAsync();
                }

                await history.StopAsync(CancellationToken.None);
                await history.DisposeAsync();
                leases.Dispose();
                await connection.DisposeAsync();
            });
    }

    [Fact]
    public async Task Another_node_reads_what_one_node_wrote()
    {
        var writer = await StartNodeAsync();
        var stream = await writer.ConnectAsync();
        var key = NewKey();
        await writer.AppendAsync(Answer(key, 5));
        var head = (await writer.History.GetHeadAsync(key, CancellationToken.None))!;

        var reader = await StartNodeAsync();

        Assert.Equal(head, await reader.History.GetHeadAsync(key, CancellationToken.None));
        Assert.Equal(AnswerEvents(5), Describe((await reader.History.ReadAfterAsync(key, At(head, 0), CancellationToken.None))!));
        var image = (await reader.History.LoadAsync(key, CancellationToken.None))!;
        Assert.Equal((head.Epoch, head.Seq, stream.Id), (image.Epoch, image.Seq, image.StreamId));
        Assert.Equal(AnswerText(5), TextOf(image));
        Assert.Equal(stream.Id, await reader.History.ConnectedStreamAsync(Upstream, CancellationToken.None));
        // A node taking the stream over learns which sessions have live state.
        Assert.Contains(key, await reader.History.OpenStreamAsync(new UpstreamStream(Upstream, "node2|1", 1), CancellationToken.None));
    }

    [Fact]
    public async Task Another_nodes_watch_receives_each_event_once_in_order()
    {
        var writer = await StartNodeAsync();
        await writer.ConnectAsync();
        var reader = await StartNodeAsync();
        var key = NewKey();
        var received = new List<SessionEvent>();
        await using var watch = await reader.History.WatchAsync(key, e => { lock (received) received.Add(e); }, CancellationToken.None);

        await writer.AppendAsync(Answer(key, 20));

        await Eventually.HoldsAsync(() => Seqs(received).Count == 22, "the other node's watch receives the 22 events");
        lock (received)
        {
            Assert.Equal(AnswerEvents(20), Describe(received));
        }
    }

    [Fact]
    public async Task A_paused_former_holder_of_the_lease_can_write_nothing()
    {
        var log = new FakeLogger<RedisSessionHistory>();
        // The paused node's lease clock stands still: it never renews, and never learns it lost the lease.
        var paused = await TrackAsync(CreateRedisNodeAsync(leaseTime: new FakeTimeProvider(), configure: RedisFixture.ShortLeases, log: log));
        await paused.ConnectAsync();
        var key = NewKey();
        await paused.AppendAsync(Answer(key, 3));
        var before = (await paused.History.GetHeadAsync(key, CancellationToken.None))!;

        // Another node takes the lease once it expired, and the stream over: the session moves on in a new epoch.
        var next = await TrackAsync(CreateRedisNodeAsync(configure: RedisFixture.ShortLeases));
        await next.ConnectAsync();
        await next.WrittenAsync();
        var head = (await next.History.GetHeadAsync(key, CancellationToken.None))!;
        Assert.True(head.Epoch > before.Epoch);

        // The paused node wakes and appends what it had read: Redis refuses it, state and history alike.
        await paused.AppendAsync([Delta(key, "msg_1", "prt_1", "late "), Status(key, "idle")]);
        await paused.AppendAsync([Delta(key, "msg_1", "prt_1", "later ")]);

        var reader = await StartNodeAsync();
        Assert.Equal(head, await reader.History.GetHeadAsync(key, CancellationToken.None));
        Assert.Equal([(1L, SessionEventTypes.EpochStarted, (string?)null)],
            Describe((await reader.History.ReadAfterAsync(key, At(head, 0), CancellationToken.None))!));
        var image = (await reader.History.ReadImageAsync(key, CancellationToken.None))!;
        Assert.Equal("t1 t2 t3 ", TextOf(image));
        Assert.Null(image.Status);
        // Said once for the lease, not once per refused batch.
        Assert.Single(log.Collector.GetSnapshot(), r => r.Message.Contains("refused a write", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Epochs_grow_across_nodes_and_start_at_Redis_clock()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        long clock;
        await using (var client = await ConnectionMultiplexer.ConnectAsync(_endpoint))
        {
            var time = (RedisResult[])(await client.GetDatabase().ExecuteAsync("TIME"))!;
            clock = (long)time[0] * 1_000_000 + (long)time[1];
        }

        var epochs = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            epochs.Add(await node1.History.NewEpochAsync(NewKey(), 0, CancellationToken.None));
            epochs.Add(await node2.History.NewEpochAsync(NewKey(), 0, CancellationToken.None));
        }

        Assert.All(epochs.Zip(epochs.Skip(1)), pair => Assert.True(pair.First < pair.Second, $"{pair.First} then {pair.Second}"));
        Assert.True(epochs[0] >= clock, $"epoch {epochs[0]} below Redis's clock {clock} µs");
    }

    [Fact]
    public async Task What_the_holder_appends_after_Redis_lost_its_lease_is_written_once_it_holds_the_lease_again()
    {
        var leaseClock = new FakeTimeProvider();
        var log = new FakeLogger<RedisSessionHistory>();
        var node = await TrackAsync(CreateRedisNodeAsync(leaseTime: leaseClock, log: log));
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 3));

        // Redis loses its data (as a restart without persistence does) between two renewals of the holder's lease, and
        // the holder writes before its next renewal.
        await redis.DeleteKeysAsync(_keyPrefix);
        await node.AppendUnwrittenAsync(Answer(key, 2, first: 4));
        await Eventually.HoldsAsync(() => log.Collector.GetSnapshot().Any(r => r.Level == LogLevel.Warning), "the writer reports it could not write");
        // The holder renews: nobody held the lease since, so it is its again.
        await using (var client = await ConnectionMultiplexer.ConnectAsync(_endpoint))
        {
            await Eventually.AdvanceUntilAsync(leaseClock, new ClusterOptions().LeaseRenewInterval,
                async () => await client.GetDatabase().KeyExistsAsync(new RedisKeys(_keyPrefix).Lease(Upstream)), "the holder holds its lease again");
        }

        await node.WrittenAsync();

        var reader = await StartNodeAsync();
        Assert.Equal(7, (await reader.History.GetHeadAsync(key, CancellationToken.None))?.Seq);
        Assert.Equal(AnswerText(5), TextOf((await reader.History.ReadImageAsync(key, CancellationToken.None))!));
    }

    [Fact]
    public async Task An_epoch_another_node_started_while_Redis_had_lost_the_session_is_never_written_over_with_an_older_one()
    {
        var holder = await StartNodeAsync();
        await holder.ConnectAsync();
        var key = NewKey();
        await holder.AppendAsync(Answer(key, 3));
        var before = (await holder.History.GetHeadAsync(key, CancellationToken.None))!;

        // Redis loses its data; before the holder writes again, a join on another node finds no state and starts one.
        await redis.DeleteKeysAsync(_keyPrefix);
        var other = await StartNodeAsync();
        var started = await other.History.EnsureAsync(key, CancellationToken.None);
        Assert.True(started.Epoch > before.Epoch);

        await holder.AppendAsync(Answer(key, 2, first: 4));
        await holder.WrittenAsync();

        // Epochs only grow: the holder moved the session above the other node's epoch, keeping its text.
        var head = (await other.History.GetHeadAsync(key, CancellationToken.None))!;
        Assert.True(head.Epoch > started.Epoch, $"epoch {head.Epoch} is not above {started.Epoch}");
        Assert.Equal(head.Epoch, holder.Registry.Use(key, s => s.Epoch));
        Assert.Equal(AnswerText(5), TextOf((await other.History.ReadImageAsync(key, CancellationToken.None))!));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task What_was_read_while_Redis_restarted_is_written_when_it_is_back(bool keepData)
    {
        var server = await redis.RestartableServerAsync();
        _endpoint = server.Endpoint;
        var node = await TrackAsync(CreateRedisNodeAsync(configure: o => o.OperationTimeout = TimeSpan.FromSeconds(1)));
        await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 5));
        var before = (await node.History.GetHeadAsync(key, CancellationToken.None))!;

        await server.StopAsync(keepData);
        await node.AppendUnwrittenAsync(Answer(key, 3, first: 6)); // the stream goes on while Redis is down
        await server.StartAsync();
        await node.WrittenAsync();

        var reader = await StartNodeAsync();
        var head = (await reader.History.GetHeadAsync(key, CancellationToken.None))!;
        Assert.Equal(At(before, 10), head);
        Assert.Equal(AnswerText(8), TextOf((await reader.History.ReadImageAsync(key, CancellationToken.None))!));
        var missed = await reader.History.ReadAfterAsync(key, before, CancellationToken.None);
        if (keepData)
        {
            Assert.Equal(AnswerEvents(8).Skip(7), Describe(missed!));
        }
        else
        {
            // Redis lost the events before: the session was written whole at its seq (same epoch), and a reader that
            // asks for what it cannot have is told so (it resyncs from a snapshot of that state).
            Assert.Null(missed);
            Assert.Empty((await reader.History.ReadAfterAsync(key, head, CancellationToken.None))!);
        }

        await node.AppendAsync(Answer(key, 1, first: 9));
        Assert.Equal([(11L, SessionEventTypes.PartDelta, (string?)"t9 ")],
            Describe((await reader.History.ReadAfterAsync(key, head, CancellationToken.None))!));
        Assert.True(await reader.History.NewEpochAsync(key, head.Epoch, CancellationToken.None) > head.Epoch);
    }
}
