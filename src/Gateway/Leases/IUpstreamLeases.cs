namespace OpencodeGateway.Leases;

/// <summary>
/// Who may hold an upstream's one event stream. On a single node this node always does; in a cluster a lease in Redis
/// names one node, with a fencing token that grows with every new holder, and the leases are spread over the nodes.
/// </summary>
public interface IUpstreamLeases
{
    /// <summary>Returns once this node holds the upstream's lease (or throws when <paramref name="ct"/> is cancelled).</summary>
    Task<IUpstreamLease> AcquireAsync(string upstream, CancellationToken ct);

    /// <summary>The current holder (<c>{node}|{token}</c>), or null when none holds it or it cannot be known now.</summary>
    Task<string?> HolderAsync(string upstream, CancellationToken ct);
}

/// <summary>This node's hold on an upstream's event stream. Dispose to give it up (another node takes it at once).</summary>
public interface IUpstreamLease : IAsyncDisposable
{
    string Upstream { get; }

    /// <summary>The fencing token: greater for every new holder, checked by every write the holder makes.</summary>
    long Token { get; }

    /// <summary><c>{node}|{token}</c>: what the lease says in the store.</summary>
    string Value { get; }

    /// <summary>Cancelled when the lease is lost (another node holds it): stop reading the stream at once.</summary>
    CancellationToken Lost { get; }

    /// <summary>
    /// Cancelled when this node holds more than its share of the leases and another node has room: stop reading the
    /// stream and dispose the lease, which hands it over (released and announced).
    /// </summary>
    CancellationToken HandOver { get; }

    /// <summary>
    /// Gives the lease up because the upstream was removed: no node takes it for <paramref name="quarantine"/>, so that a
    /// node that has not seen the removal yet does not read the removed server again. Disposing afterwards does nothing.
    /// </summary>
    ValueTask RetireAsync(TimeSpan quarantine);
}
