namespace OpencodeGateway.Upstreams;

/// <summary>
/// Where the upstreams registered at run time are kept: the session store's database (SQLite on a single node,
/// PostgreSQL shared by a cluster's nodes). The configured upstreams are never in it.
/// </summary>
internal interface IUpstreamStore
{
    /// <summary>Every registered upstream, oldest registration first.</summary>
    Task<IReadOnlyList<RegisteredUpstream>> ListUpstreamsAsync(CancellationToken ct);

    /// <summary>Adds one; false, with nothing written, when an upstream with its id is registered already.</summary>
    Task<bool> TryAddUpstreamAsync(RegisteredUpstream upstream, CancellationToken ct);

    /// <summary>Removes one; false when none with this id is registered.</summary>
    Task<bool> RemoveUpstreamAsync(string upstreamId, CancellationToken ct);
}

/// <summary>One row of <c>upstreams</c>.</summary>
/// <param name="SealedPassword">The password encrypted by <c>UpstreamSecrets</c> (never the password itself); null without one.</param>
internal sealed record RegisteredUpstream(string Id, string BaseUrl, string? Directory, string? SealedPassword, DateTimeOffset CreatedAt);
