namespace OpencodeGateway.Ingest;

/// <summary>
/// One connection of an upstream's event stream, read under <paramref name="Lease"/> (<c>{node}|{token}</c>; on a single
/// node always the same). Everything sequenced from it is continuous with it; a new connection is a new stream.
/// </summary>
/// <param name="Connection">Counts this node's connections of the stream under the lease, from 1.</param>
public sealed record UpstreamStream(string Upstream, string Lease, long Connection)
{
    public string Id => $"{Lease}|{Connection}";
}
