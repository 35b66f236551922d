using OpencodeGateway.Testing;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Cluster;
using OpencodeGateway.Leases;
using Gateway.Tests.Support;

namespace Gateway.Tests.Leases;

/// <summary>
/// What every <see cref="IUpstreamLeases"/> must do, run against the single node's <see cref="LocalUpstreamLeases"/> and
/// the cluster's <see cref="RedisUpstreamLeases"/> over a real Redis. The nodes of a test contend for the same upstreams;
/// each runs on its own <see cref="FakeTimeProvider"/>, which these tests never advance: whatever completes here does so
/// without a retry interval or a renewal passing. What only a cluster does (one holder at a time, fencing tokens,
/// expiry, Redis restarts) is in the Redis class.
/// </summary>
public abstract class UpstreamLeasesSpec : IAsyncLifetime
{
    private readonly List<LeaseNode> _nodes = [];

    /// <summary>A node of this test's cluster, on <paramref name="time"/>, with its options changed by <paramref name="configure"/>.</summary>
    private protected abstract Task<LeaseNode> CreateNodeAsync(string nodeId, TimeProvider time, Action<ClusterOptions>? configure);

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
    }

    private protected async Task<LeaseNode> StartNodeAsync(TimeProvider? time = null, Action<ClusterOptions>? configure = null)
    {
        var node = await CreateNodeAsync($"node{_nodes.Count + 1}", time ?? new FakeTimeProvider(), configure);
        _nodes.Add(node);
        return node;
    }

    private protected static string NewUpstream() => "up-" + Guid.NewGuid().ToString("N")[..8];

    private protected static async Task<IUpstreamLease> AcquireAsync(LeaseNode node, string upstream) =>
        await node.Leases.AcquireAsync(upstream, CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);

    [Fact]
    public async Task Acquire_gives_a_lease_on_the_upstream_that_the_store_names_as_its_holder()
    {
        var node = await StartNodeAsync();
        var upstream = NewUpstream();

        await using var lease = await AcquireAsync(node, upstream);

        Assert.Equal(upstream, lease.Upstream);
        Assert.EndsWith($"|{lease.Token}", lease.Value);
        Assert.Equal(lease.Value, await node.Leases.HolderAsync(upstream, CancellationToken.None));
        Assert.False(lease.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task Leases_of_different_upstreams_are_independent()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var (a, b) = (NewUpstream(), NewUpstream());

        await using var leaseA = await AcquireAsync(node1, a);
        await using var leaseB = await AcquireAsync(node2, b);
        await using var leaseC = await AcquireAsync(node1, NewUpstream());

        Assert.Equal(leaseA.Value, await node2.Leases.HolderAsync(a, CancellationToken.None));
        Assert.Equal(leaseB.Value, await node1.Leases.HolderAsync(b, CancellationToken.None));
    }

    [Fact]
    public async Task A_released_lease_is_acquired_again_at_once_by_any_node()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var upstream = NewUpstream();

        await (await AcquireAsync(node1, upstream)).DisposeAsync();
        await (await AcquireAsync(node1, upstream)).DisposeAsync();
        await using var lease = await AcquireAsync(node2, upstream);

        Assert.Equal(lease.Value, await node1.Leases.HolderAsync(upstream, CancellationToken.None));
    }

    [Fact]
    public async Task A_waiting_acquire_gets_the_lease_as_soon_as_the_holder_releases_it()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var upstream = NewUpstream();
        var held = await AcquireAsync(node1, upstream);

        var waiting = node2.Leases.AcquireAsync(upstream, CancellationToken.None);
        await held.DisposeAsync();

        // Neither clock moves: no retry interval passes, so only the release itself can let the waiter in.
        await using var taken = await waiting.WaitAsync(Eventually.DefaultTimeout);
        Assert.Equal(taken.Value, await node1.Leases.HolderAsync(upstream, CancellationToken.None));
        Assert.False(taken.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task Releasing_a_lease_twice_is_harmless()
    {
        var node = await StartNodeAsync();
        var upstream = NewUpstream();
        var lease = await AcquireAsync(node, upstream);

        await lease.DisposeAsync();
        await lease.DisposeAsync();

        await using var again = await AcquireAsync(node, upstream);
        Assert.Equal(again.Value, await node.Leases.HolderAsync(upstream, CancellationToken.None));
    }
}

/// <summary>One node's leases and what they run on.</summary>
internal sealed class LeaseNode(IUpstreamLeases leases, Func<ValueTask>? dispose = null) : IAsyncDisposable
{
    public IUpstreamLeases Leases { get; } = leases;

    /// <summary>The node's log, where its implementation writes one.</summary>
    public FakeLogCollector? Log { get; init; }

    public ValueTask DisposeAsync() => dispose?.Invoke() ?? ValueTask.CompletedTask;
}
