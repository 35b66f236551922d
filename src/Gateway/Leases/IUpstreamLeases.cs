namespace OpencodeGateway.Leases;

/// <summary>
/// Who may hold an upstream's one event stream. On a single node this node always does; in a cluster a lease in Redis
/// names one node, with a fencing token that grows with every new holder.
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
}
