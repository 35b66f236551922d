namespace OpencodeGateway.Leases.Internal;

/// <summary>One node of those sharing the leases: how many it holds and how many upstreams it wants (tries or holds).</summary>
internal readonly record struct NodeLoad(string Node, int Held, int Wanted);

/// <summary>
/// How the upstreams' leases are spread: with M upstreams and N nodes that want them (M: the most any node wants, as
/// nodes learn of a new or removed upstream a moment apart), each node's share is ⌈M/N⌉. A node below its share takes
/// a free lease at once; one at or above it leaves a free lease to a node below theirs, if there is one; one above it
/// hands over what the others lack. A node that wants nothing (starting, or stopping) is not counted.
/// </summary>
internal static class LeaseBalance
{
    /// <summary>Each node's share; 0 when no node wants anything.</summary>
    public static int Share(IReadOnlyCollection<NodeLoad> nodes)
    {
        var wanting = nodes.Count(n => n.Wanted > 0);
        return wanting == 0 ? 0 : (nodes.Max(n => n.Wanted) + wanting - 1) / wanting;
    }

    /// <summary>Whether <paramref name="self"/> may take a free lease now: below its share, or nobody else below theirs.</summary>
    public static bool MayTake(NodeLoad self, IReadOnlyCollection<NodeLoad> others)
    {
        var share = Share([self, .. others]);
        return self.Held < share || !others.Any(n => n.Wanted > 0 && n.Held < share);
    }

    /// <summary>How many of its leases <paramref name="self"/> should hand over: what it holds above its share, at most what the others lack of theirs.</summary>
    public static int ToHandOver(NodeLoad self, IReadOnlyCollection<NodeLoad> others)
    {
        var share = Share([self, .. others]);
        var room = others.Where(n => n.Wanted > 0).Sum(n => Math.Max(0, share - n.Held));
        return Math.Max(0, Math.Min(self.Held - share, room));
    }
}
