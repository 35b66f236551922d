using StackExchange.Redis;

namespace OpencodeGateway.Cluster;

/// <summary>The names of every Redis key and channel of one cluster (all under its <see cref="ClusterOptions.KeyPrefix"/>).</summary>
public sealed class RedisKeys(string prefix)
{
    public string Prefix { get; } = prefix;

    /// <summary>A session's live state (hash): its entries, epoch, seq and the stream it is continuous with.</summary>
    public RedisKey State(string upstream, string sessionId) => $"{Prefix}:s:{upstream}:{sessionId}";

    /// <summary>A session's recent events (stream, ids <c>{epoch}-{seq}</c>).</summary>
    public RedisKey History(string upstream, string sessionId) => $"{Prefix}:h:{upstream}:{sessionId}";

    /// <summary>The prefix of a session's text keys; one string per streamed part field, appended to.</summary>
    public string TextPrefix(string upstream, string sessionId) => $"{Prefix}:t:{upstream}:{sessionId}:";

    /// <summary>Where a session's new events are published.</summary>
    public RedisChannel Events(string upstream, string sessionId) => RedisChannel.Literal($"{Prefix}:c:{upstream}:{sessionId}");

    /// <summary>The sessions of an upstream that have live state (sorted set, score: last activity in ms).</summary>
    public RedisKey Active(string upstream) => $"{Prefix}:active:{upstream}";

    /// <summary>Who holds an upstream's event stream: <c>{node}|{token}</c>, with a TTL.</summary>
    public RedisKey Lease(string upstream) => $"{Prefix}:lease:{upstream}";

    /// <summary>The fencing counter behind lease tokens.</summary>
    public RedisKey Fence(string upstream) => $"{Prefix}:fence:{upstream}";

    /// <summary>The holder's current connection of the upstream's event stream (absent while none is connected).</summary>
    public RedisKey Stream(string upstream) => $"{Prefix}:stream:{upstream}";

    /// <summary>The last epoch handed out: epochs grow cluster-wide.</summary>
    public RedisKey LastEpoch => $"{Prefix}:epoch";

    /// <summary>The nodes sharing the leases (sorted set: node → when its liveness expires, Redis's clock in ms).</summary>
    public RedisKey LeaseNodes => $"{Prefix}:lease-nodes";

    /// <summary>How many leases each node holds (hash: node → count).</summary>
    public RedisKey LeaseNodesHeld => $"{Prefix}:lease-nodes:held";

    /// <summary>How many upstreams each node wants, tries or holds (hash: node → count).</summary>
    public RedisKey LeaseNodesWanted => $"{Prefix}:lease-nodes:wanted";

    /// <summary>Published when a node gives a lease up, so another takes it at once.</summary>
    public RedisChannel LeaseReleased => RedisChannel.Literal($"{Prefix}:lease-released");

    /// <summary>The SignalR backplane's channel prefix.</summary>
    public string Backplane => $"{Prefix}:signalr";
}
