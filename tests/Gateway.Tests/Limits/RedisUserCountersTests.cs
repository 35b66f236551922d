using OpencodeGateway.Testing;
using Gateway.Tests.Support;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster;
using OpencodeGateway.Limits;

namespace Gateway.Tests.Limits;

/// <summary>
/// The counters specification on the cluster's counts (<see cref="RedisUserCounters"/>) over a real Redis, plus what only
/// a cluster does: a node that dies without giving its slots back stops counting within the lease TTL (Redis's clock
/// decides: short TTLs, waited for with a deadline), and a node writes its slots again when Redis lost them.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisUserCountersTests(RedisFixture redis) : UserCountersSpec
{
    private readonly string _keyPrefix = RedisFixture.NewKeyPrefix();
    private readonly List<(RedisUserCounters Counters, RedisConnection Connection)> _nodes = [];

    protected override async Task<IUserCounters> StartNodeAsync() => (await StartRedisNodeAsync(Clock)).Counters;

    private async Task<(RedisUserCounters Counters, RedisConnection Connection, FakeLogger<RedisUserCounters> Log)> StartRedisNodeAsync(TimeProvider time)
    {
        var options = RedisFixture.Cluster(redis.Endpoint, _keyPrefix, $"node{_nodes.Count + 1}");
        RedisFixture.ShortLeases(options);
        var connection = await RedisFixture.ConnectNodeAsync(options);
        var log = new FakeLogger<RedisUserCounters>();
        var counters = new RedisUserCounters(connection, Options.Create(options), time, log);
        await counters.StartAsync(CancellationToken.None);
        _nodes.Add((counters, connection));
        return (counters, connection, log);
    }

    public override async Task DisposeAsync()
    {
        foreach (var (counters, connection) in _nodes)
        {
            await counters.StopAsync(CancellationToken.None);
            counters.Dispose();
            await connection.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_node_that_dies_holding_slots_stops_counting_within_the_lease_ttl()
    {
        var dying = await StartRedisNodeAsync(TimeProvider.System);
        var survivor = await StartRedisNodeAsync(TimeProvider.System);
        var name = NewName();
        for (var i = 0; i < 3; i++)
        {
            Assert.NotNull(await dying.Counters.TryTakeSlotAsync("connections", name, 5, CancellationToken.None));
        }

        await using var kept = await survivor.Counters.TryTakeSlotAsync("connections", name, 5, CancellationToken.None);
        Assert.Equal(4, await survivor.Counters.SlotsAsync("connections", name, CancellationToken.None));

        // Killed: its connection to Redis is gone, nothing was given back, nothing renews its liveness.
        await dying.Connection.DisposeAsync();
        var died = DateTime.UtcNow;
        await Eventually.HoldsAsync(async () => await survivor.Counters.SlotsAsync("connections", name, CancellationToken.None) == 1,
            "the dead node's 3 slots stop counting", RedisFixture.ShortLeaseTtl * 5);
        Assert.True(DateTime.UtcNow - died >= RedisFixture.ShortLeaseTtl - RedisFixture.ShortLeaseRenewInterval,
            "counted as dead before its liveness could have expired");
        for (var i = 0; i < 4; i++)
        {
            Assert.NotNull(await survivor.Counters.TryTakeSlotAsync("connections", name, 5, CancellationToken.None));
        }

        Assert.Null(await survivor.Counters.TryTakeSlotAsync("connections", name, 5, CancellationToken.None));
    }

    [Fact]
    public async Task A_node_writes_its_slots_again_when_redis_lost_them()
    {
        var node = await StartRedisNodeAsync(TimeProvider.System);
        var other = await StartRedisNodeAsync(TimeProvider.System);
        var name = NewName();
        var held = new List<IAsyncDisposable>();
        for (var i = 0; i < 2; i++)
        {
            held.Add((await node.Counters.TryTakeSlotAsync("connections", name, 2, CancellationToken.None))!);
        }

        node.Log.Collector.Clear();
        await redis.DeleteKeysAsync(_keyPrefix); // as a restart of a Redis without persistence

        // The node renews every 300 ms: it may have written its slots again before a count right after the delete could
        // see them gone (it did once under load), so the test waits for them and for the node's word that it wrote them.
        await Eventually.HoldsAsync(async () => await other.Counters.SlotsAsync("connections", name, CancellationToken.None) == 2,
            "the node's 2 slots are back in Redis after its next renewal");
        Assert.Contains(node.Log.Collector.GetSnapshot(), r => r.Id.Id == 73);
        Assert.Null(await other.Counters.TryTakeSlotAsync("connections", name, 2, CancellationToken.None));
        await held[0].DisposeAsync();
        Assert.NotNull(await other.Counters.TryTakeSlotAsync("connections", name, 2, CancellationToken.None));
    }

    [Fact]
    public async Task A_stopped_node_gives_its_slots_up_at_once()
    {
        var stopping = await StartRedisNodeAsync(TimeProvider.System);
        var other = await StartRedisNodeAsync(TimeProvider.System);
        var name = NewName();
        Assert.NotNull(await stopping.Counters.TryTakeSlotAsync("connections", name, 1, CancellationToken.None));

        await stopping.Counters.StopAsync(CancellationToken.None);

        Assert.Equal(0, await other.Counters.SlotsAsync("connections", name, CancellationToken.None));
    }
}
