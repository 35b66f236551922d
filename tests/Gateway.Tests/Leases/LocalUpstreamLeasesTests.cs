using OpencodeGateway.Cluster;
using OpencodeGateway.Leases;

namespace Gateway.Tests.Leases;

/// <summary>
/// The lease specification on a single node (<see cref="LocalUpstreamLeases"/>): this node holds every upstream's stream
/// for good, so there is nobody to exclude, no fencing (the token is always 0) and nothing to lose.
/// </summary>
public sealed class LocalUpstreamLeasesTests : UpstreamLeasesSpec
{
    private protected override Task<LeaseNode> CreateNodeAsync(string nodeId, TimeProvider time, Action<ClusterOptions>? configure) =>
        Task.FromResult(new LeaseNode(new LocalUpstreamLeases()));

    [Fact]
    public async Task Every_acquire_succeeds_at_once_even_while_the_upstream_is_held()
    {
        var node = await StartNodeAsync();
        var upstream = NewUpstream();

        await using var first = await AcquireAsync(node, upstream);
        await using var second = await AcquireAsync(node, upstream);

        Assert.Equal(first.Value, second.Value);
    }

    [Fact]
    public async Task This_node_is_always_the_holder_and_never_loses_a_lease()
    {
        var node = await StartNodeAsync();
        var upstream = NewUpstream();
        Assert.Equal("local|0", await node.Leases.HolderAsync(upstream, CancellationToken.None));

        var lease = await AcquireAsync(node, upstream);
        Assert.Equal(("local|0", 0L), (lease.Value, lease.Token));
        Assert.False(lease.Lost.CanBeCanceled);
        Assert.False(lease.HandOver.CanBeCanceled);
        await lease.DisposeAsync();

        Assert.Equal("local|0", await node.Leases.HolderAsync(upstream, CancellationToken.None));
    }
}
