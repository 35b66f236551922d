using OpencodeGateway.Testing;
using Gateway.Tests.Support;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Cluster;
using OpencodeGateway.Leases;
using StackExchange.Redis;

namespace Gateway.Tests.Leases;

/// <summary>
/// The lease specification on the cluster's leases (<see cref="RedisUpstreamLeases"/>) over a real Redis, plus what
/// only a cluster does: one holder at a time among nodes, fencing tokens that grow with every holder (also after Redis
/// lost its data), expiry of a lease its holder stopped renewing (Redis's clock decides: short TTLs, and the tests wait
/// for the outcome with a deadline), and Redis restarts. Each node has its own connection, as a process has; a paused
/// node is one whose <see cref="FakeTimeProvider"/> stands still.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisUpstreamLeasesTests(RedisFixture redis) : UpstreamLeasesSpec
{
    private readonly string _keyPrefix = RedisFixture.NewKeyPrefix();
    private string _endpoint = redis.Endpoint;

    private protected override async Task<LeaseNode> CreateNodeAsync(string nodeId, TimeProvider time, Action<ClusterOptions>? configure)
    {
        var options = RedisFixture.Cluster(_endpoint, _keyPrefix, nodeId);
        configure?.Invoke(options);
        var connection = await RedisFixture.ConnectNodeAsync(options);
        var log = new FakeLogger<RedisUpstreamLeases>();
        var leases = new RedisUpstreamLeases(connection, Options.Create(options), time, log);
        return new LeaseNode(leases, async () =>
        {
            await leases.StopAsync(CancellationToken.None);
            leases.Dispose();
            await connection.DisposeAsync();
        }) { Log = log.Collector };
    }

    /// <summary>Leases of a few seconds' life on the real clock, for nodes that share them as the gateway's do.</summary>
    private static void FastLeases(ClusterOptions options)
    {
        options.LeaseTtl = TimeSpan.FromSeconds(2);
        options.LeaseRenewInterval = TimeSpan.FromMilliseconds(250);
        options.LeaseRetryInterval = TimeSpan.FromMilliseconds(100);
    }

    /// <summary>A started node (writing its share every renew interval), reading every upstream as the gateway's pumps do.</summary>
    private async Task<PumpingNode> StartPumpingNodeAsync(IReadOnlyList<string> upstreams)
    {
        var node = await StartNodeAsync(TimeProvider.System, FastLeases);
        var leases = (RedisUpstreamLeases)node.Leases;
        await leases.StartAsync(CancellationToken.None);
        return new PumpingNode(leases, upstreams);
    }

    /// <summary>How many of <paramref name="upstreams"/> each node holds, as Redis says.</summary>
    private static async Task<Dictionary<string, int>> HeldByNodeAsync(LeaseNode asker, IEnumerable<string> upstreams)
    {
        var held = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var upstream in upstreams)
        {
            if (await asker.Leases.HolderAsync(upstream, CancellationToken.None) is { } holder)
            {
                var node = holder.Split('|')[0];
                held[node] = held.GetValueOrDefault(node) + 1;
            }
        }

        return held;
    }

    private static Task WaitingAsync(LeaseNode node) =>
        Eventually.HoldsAsync(() => node.Log!.GetSnapshot().Any(r => r.Message.Contains("waiting", StringComparison.Ordinal)),
            "the node found the lease held and waits");

    private async Task<long> RedisClockMsAsync()
    {
        await using var client = await ConnectionMultiplexer.ConnectAsync(_endpoint);
        var time = (RedisResult[])(await client.GetDatabase().ExecuteAsync("TIME"))!;
        return (long)time[0] * 1000 + (long)time[1] / 1000;
    }

    [Fact]
    public async Task Only_one_node_holds_an_upstream_at_a_time_and_every_new_holder_has_a_greater_token()
    {
        const int rounds = 4;
        var upstream = NewUpstream();
        var nodes = new List<LeaseNode>();
        for (var i = 0; i < 3; i++)
        {
            nodes.Add(await StartNodeAsync(TimeProvider.System, o => o.LeaseRetryInterval = TimeSpan.FromMilliseconds(20)));
        }

        var clock = await RedisClockMsAsync();
        var holding = 0;
        var tokens = new List<(long Token, int Holders)>();
        await Task.WhenAll(nodes.Select(node => Task.Run(async () =>
        {
            for (var round = 0; round < rounds; round++)
            {
                var lease = await AcquireAsync(node, upstream);
                var holders = Interlocked.Increment(ref holding);
                lock (tokens)
                {
                    tokens.Add((lease.Token, holders));
                }

                await Task.Delay(5);
                Interlocked.Decrement(ref holding);
                await lease.DisposeAsync();
            }
        })));

        Assert.Equal(nodes.Count * rounds, tokens.Count);
        Assert.All(tokens, t => Assert.Equal(1, t.Holders));
        // In the order the holders took it (they never overlap), and at least Redis's clock in ms.
        Assert.All(tokens.Zip(tokens.Skip(1)), pair => Assert.True(pair.First.Token < pair.Second.Token, $"{pair.First.Token} then {pair.Second.Token}"));
        Assert.True(tokens[0].Token >= clock, $"token {tokens[0].Token} below Redis's clock {clock}");
    }

    [Fact]
    public async Task A_node_waits_while_another_holds_the_lease()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var upstream = NewUpstream();
        var held = await AcquireAsync(node1, upstream);

        var waiting = node2.Leases.AcquireAsync(upstream, CancellationToken.None);
        await WaitingAsync(node2);

        Assert.False(waiting.IsCompleted);
        Assert.Equal(held.Value, await node2.Leases.HolderAsync(upstream, CancellationToken.None));
        await held.DisposeAsync();
        await using var taken = await waiting.WaitAsync(Eventually.DefaultTimeout);
        Assert.True(taken.Token > held.Token);
    }

    [Fact]
    public async Task Nobody_holds_an_upstream_before_it_is_acquired_or_after_it_is_released()
    {
        var node = await StartNodeAsync();
        var upstream = NewUpstream();
        Assert.Null(await node.Leases.HolderAsync(upstream, CancellationToken.None));

        await (await AcquireAsync(node, upstream)).DisposeAsync();

        Assert.Null(await node.Leases.HolderAsync(upstream, CancellationToken.None));
    }

    [Fact]
    public async Task A_cancelled_acquire_throws_and_takes_nothing()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var upstream = NewUpstream();
        var held = await AcquireAsync(node1, upstream);
        using var cancel = new CancellationTokenSource();

        var waiting = node2.Leases.AcquireAsync(upstream, cancel.Token);
        await WaitingAsync(node2);
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Eventually.DefaultTimeout));
        await held.DisposeAsync();
        Assert.Null(await node1.Leases.HolderAsync(upstream, CancellationToken.None));
    }

    [Fact]
    public async Task A_lease_its_paused_holder_does_not_renew_expires_after_its_ttl_and_the_old_holder_learns_it_lost_it()
    {
        var paused = new FakeTimeProvider();
        var node1 = await StartNodeAsync(paused, RedisFixture.ShortLeases);
        var node2 = await StartNodeAsync(TimeProvider.System, RedisFixture.ShortLeases);
        var upstream = NewUpstream();
        var old = await AcquireAsync(node1, upstream);

        // Node 1's clock stands still, so it never renews; Redis lets the lease expire and node 2 takes it.
        await using var taken = await AcquireAsync(node2, upstream);
        Assert.True(taken.Token > old.Token);
        Assert.False(old.Lost.IsCancellationRequested);

        // Node 1 resumes and renews.
        await Eventually.AdvanceUntilAsync(paused, RedisFixture.ShortLeaseRenewInterval, () => old.Lost.IsCancellationRequested,
            "the old holder's lease reports it lost");
        await old.DisposeAsync();
        Assert.Equal(taken.Value, await node1.Leases.HolderAsync(upstream, CancellationToken.None));
        Assert.False(taken.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task The_holder_keeps_its_lease_past_the_ttl_by_renewing_it()
    {
        var clock = new FakeTimeProvider();
        var node = await StartNodeAsync(clock, RedisFixture.ShortLeases);
        var upstream = NewUpstream();
        await using var lease = await AcquireAsync(node, upstream);
        await using var client = await ConnectionMultiplexer.ConnectAsync(_endpoint);
        var key = new RedisKeys(_keyPrefix).Lease(upstream);
        async Task<double> RemainingMsAsync() => (await client.GetDatabase().KeyTimeToLiveAsync(key))?.TotalMilliseconds ?? 0;
        var threshold = RedisFixture.ShortLeaseTtl.TotalMilliseconds * 0.7;

        // Four times: the lease runs down on Redis's clock, then the holder renews it; more than a TTL passes in all.
        for (var i = 0; i < 4; i++)
        {
            await Eventually.HoldsAsync(async () => await RemainingMsAsync() < threshold, "the lease runs down");
            await Eventually.AdvanceUntilAsync(clock, RedisFixture.ShortLeaseRenewInterval, async () => await RemainingMsAsync() > threshold,
                "the holder's renewal restores it");
        }

        Assert.Equal(lease.Value, await node.Leases.HolderAsync(upstream, CancellationToken.None));
        Assert.False(lease.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task A_lease_that_expired_while_nobody_else_wanted_it_is_reclaimed_by_its_holder()
    {
        var clock = new FakeTimeProvider();
        var node = await StartNodeAsync(clock, RedisFixture.ShortLeases);
        var upstream = NewUpstream();
        await using var lease = await AcquireAsync(node, upstream);
        await Eventually.HoldsAsync(async () => await node.Leases.HolderAsync(upstream, CancellationToken.None) is null,
            "Redis expires the lease nobody renewed");

        await Eventually.AdvanceUntilAsync(clock, RedisFixture.ShortLeaseRenewInterval,
            async () => await node.Leases.HolderAsync(upstream, CancellationToken.None) == lease.Value, "the holder reclaims it when it renews");
        Assert.False(lease.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task A_paused_holder_does_not_reclaim_a_lease_another_node_held_and_released_meanwhile()
    {
        var paused = new FakeTimeProvider();
        var node1 = await StartNodeAsync(paused, RedisFixture.ShortLeases);
        var node2 = await StartNodeAsync(TimeProvider.System, RedisFixture.ShortLeases);
        var upstream = NewUpstream();
        var old = await AcquireAsync(node1, upstream);
        // Node 2 takes the lease once it expired, reads the stream under its greater token, and gives the lease up.
        await (await AcquireAsync(node2, upstream)).DisposeAsync();

        // Node 1 resumes and renews while nobody holds the lease. Its state is older than what node 2 wrote: taking the
        // lease back would let it write that state again.
        await Eventually.AdvanceUntilAsync(paused, RedisFixture.ShortLeaseRenewInterval, () => old.Lost.IsCancellationRequested,
            "the paused holder learns it lost its lease");
        Assert.Null(await node1.Leases.HolderAsync(upstream, CancellationToken.None));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task After_a_Redis_restart_the_holder_keeps_its_lease_and_the_next_holder_has_a_greater_token(bool keepData)
    {
        var server = await redis.RestartableServerAsync();
        _endpoint = server.Endpoint;
        static void Options(ClusterOptions o)
        {
            o.LeaseTtl = TimeSpan.FromSeconds(2);
            o.LeaseRenewInterval = TimeSpan.FromMilliseconds(500);
            o.LeaseRetryInterval = TimeSpan.FromMilliseconds(200);
            o.OperationTimeout = TimeSpan.FromSeconds(1);
        }

        var node1 = await StartNodeAsync(TimeProvider.System, Options);
        var node2 = await StartNodeAsync(TimeProvider.System, Options);
        var upstream = NewUpstream();
        var held = await AcquireAsync(node1, upstream);
        var waiting = node2.Leases.AcquireAsync(upstream, CancellationToken.None);
        await WaitingAsync(node2);

        await server.StopAsync(keepData);
        await server.StartAsync();

        // The holder renews at once when Redis is back (reclaiming the lease Redis lost); the others wait a TTL first.
        await Eventually.HoldsAsync(async () => await node1.Leases.HolderAsync(upstream, CancellationToken.None) == held.Value,
            "the holder holds its lease again", TimeSpan.FromSeconds(20));
        Assert.False(held.Lost.IsCancellationRequested);
        Assert.False(waiting.IsCompleted);

        await held.DisposeAsync();
        await using var next = await waiting.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(next.Token > held.Token, $"token {next.Token} after {held.Token}");
    }

    [Fact]
    public async Task A_retired_lease_keeps_every_node_out_for_its_quarantine_then_goes_to_the_next_with_a_greater_token()
    {
        var node1 = await StartNodeAsync(TimeProvider.System, FastLeases);
        var node2 = await StartNodeAsync(TimeProvider.System, FastLeases);
        var upstream = NewUpstream();
        var lease = await AcquireAsync(node1, upstream);
        var waiting = node2.Leases.AcquireAsync(upstream, CancellationToken.None);
        await WaitingAsync(node2);

        var retired = System.Diagnostics.Stopwatch.StartNew();
        await lease.RetireAsync(TimeSpan.FromSeconds(1.5));
        await lease.DisposeAsync();

        Assert.Null(await node1.Leases.HolderAsync(upstream, CancellationToken.None));
        await using var next = await waiting.WaitAsync(Eventually.DefaultTimeout);
        Assert.True(retired.Elapsed >= TimeSpan.FromSeconds(1.4), $"taken {retired.Elapsed.TotalSeconds:0.00} s after retiring");
        Assert.True(next.Token > lease.Token);
        Assert.False(lease.HandOver.IsCancellationRequested);
    }

    [Fact]
    public async Task The_leases_are_spread_over_the_nodes_and_spread_again_when_one_leaves_and_when_one_joins()
    {
        var upstreams = Enumerable.Range(0, 9).Select(_ => NewUpstream()).ToList();
        var nodes = new List<PumpingNode>();
        for (var i = 0; i < 3; i++)
        {
            nodes.Add(await StartPumpingNodeAsync(upstreams));
        }

        var asker = await StartNodeAsync();
        async Task<bool> SpreadAsync(int nodeCount, int most)
        {
            var held = await HeldByNodeAsync(asker, upstreams);
            return held.Values.Sum() == upstreams.Count && held.Count == nodeCount && held.Values.All(n => n <= most);
        }

        try
        {
            // 9 upstreams over 3 nodes: 3 each, whichever node started first.
            await Eventually.HoldsAsync(() => SpreadAsync(3, 3), "3 leases on each of 3 nodes");
            Assert.All(nodes, n => Assert.Equal(0, n.Overlaps));

            // One stops (gracefully: it leaves, then releases): the other two take its leases at once, 4 and 5.
            var stopped = nodes[2];
            var stopping = System.Diagnostics.Stopwatch.StartNew();
            await stopped.StopAsync();
            await Eventually.HoldsAsync(() => SpreadAsync(2, 5), "all 9 leases on the 2 other nodes, at most 5 each");
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(2), $"taken over {stopping.Elapsed.TotalSeconds:0.0} s after the stop (a lease TTL is 2 s)");

            // Another joins: the two hand it its share.
            nodes.Add(await StartPumpingNodeAsync(upstreams));
            await Eventually.HoldsAsync(() => SpreadAsync(3, 3), "3 leases on each of 3 nodes again");
            Assert.All(nodes, n => Assert.Equal(0, n.Overlaps));
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.StopAsync();
            }
        }
    }

    /// <summary>
    /// A node's pumps: one loop per upstream that acquires its lease and holds it until it is lost or to be handed over.
    /// Counts holds that began while this node's previous hold of the same upstream had not ended (never expected).
    /// </summary>
    private sealed class PumpingNode
    {
        private readonly RedisUpstreamLeases _leases;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _pumps;
        private int _overlaps;

        public PumpingNode(RedisUpstreamLeases leases, IReadOnlyList<string> upstreams)
        {
            _leases = leases;
            _pumps = Task.WhenAll(upstreams.Select(u => Task.Run(() => PumpAsync(u))));
        }

        public int Overlaps => Volatile.Read(ref _overlaps);

        private async Task PumpAsync(string upstream)
        {
            var holding = 0;
            while (!_stop.IsCancellationRequested)
            {
                IUpstreamLease lease;
                try
                {
                    lease = await _leases.AcquireAsync(upstream, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                await using (lease)
                {
                    if (Interlocked.Increment(ref holding) > 1)
                    {
                        Interlocked.Increment(ref _overlaps);
                    }

                    using var reading = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, lease.Lost, lease.HandOver);
                    await Task.Delay(Timeout.InfiniteTimeSpan, reading.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    Interlocked.Decrement(ref holding);
                }
            }
        }

        /// <summary>Stops as the gateway does: leaves the nodes sharing the leases, then its pumps release theirs.</summary>
        public async Task StopAsync()
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            await _leases.StoppingAsync(CancellationToken.None);
            await _stop.CancelAsync();
            await _pumps;
        }
    }
}
