using OpencodeGateway.Leases.Internal;

namespace Gateway.Tests.Leases;

/// <summary>How the leases are spread: each node's share, who takes a free lease, who hands leases over.</summary>
public sealed class LeaseBalanceTests
{
    private static NodeLoad Node(int held, int wanted = 30, string name = "n") => new(name, held, wanted);

    [Theory]
    [InlineData(30, 3, 10)]
    [InlineData(31, 3, 11)]
    [InlineData(30, 2, 15)]
    [InlineData(1, 3, 1)]
    [InlineData(2, 3, 1)]
    public void The_share_is_the_upstreams_over_the_nodes_rounded_up(int upstreams, int nodes, int share) =>
        Assert.Equal(share, LeaseBalance.Share([.. Enumerable.Range(0, nodes).Select(i => Node(0, upstreams, $"n{i}"))]));

    [Fact]
    public void The_share_counts_the_most_any_node_wants_and_only_nodes_that_want_any()
    {
        // A node that has not seen two new upstreams yet, and one that wants nothing (starting, or stopping).
        Assert.Equal(16, LeaseBalance.Share([Node(0, 30), Node(0, 32), Node(0, 0)]));
        Assert.Equal(0, LeaseBalance.Share([Node(0, 0)]));
    }

    [Fact]
    public void A_node_below_its_share_takes_a_free_lease_one_at_it_leaves_it_to_a_node_below_theirs()
    {
        Assert.True(LeaseBalance.MayTake(Node(9), [Node(10), Node(10)]));
        Assert.False(LeaseBalance.MayTake(Node(10), [Node(9), Node(10)]));
        // Nobody else below their share (or the one below wants nothing): take it rather than leave it unread.
        Assert.True(LeaseBalance.MayTake(Node(10), [Node(10), Node(10)]));
        Assert.True(LeaseBalance.MayTake(Node(11), [Node(10), Node(0, wanted: 0)]));
    }

    [Fact]
    public void A_node_above_its_share_hands_over_what_the_others_lack_and_no_more()
    {
        // A node joined: 30 over 3, 10 each; the two holding 15 hand over 5 each.
        Assert.Equal(5, LeaseBalance.ToHandOver(Node(15), [Node(15), Node(0)]));
        // Others lack only 2 of their share.
        Assert.Equal(2, LeaseBalance.ToHandOver(Node(13), [Node(10), Node(8)]));
        Assert.Equal(0, LeaseBalance.ToHandOver(Node(10), [Node(10), Node(10)]));
        Assert.Equal(0, LeaseBalance.ToHandOver(Node(11), [Node(10), Node(10)]));
        Assert.Equal(0, LeaseBalance.ToHandOver(Node(12), [Node(10), Node(0, wanted: 0)]));
    }
}
