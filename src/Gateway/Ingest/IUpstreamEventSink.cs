namespace OpencodeGateway.Ingest;

/// <summary>Where an upstream's event pump hands what it reads: the next stage of the event path.</summary>
internal interface IUpstreamEventSink
{
    /// <summary>
    /// A new connection of the upstream's event stream is up. Whatever the upstream emitted while no connection was
    /// reading is gone: continuity with earlier events is lost. Events of the stream follow only after this completes.
    /// </summary>
    ValueTask OnStreamConnectedAsync(UpstreamStream stream, CancellationToken ct);

    /// <summary>One normalised event of a session (never heartbeats, ignored or malformed lines).</summary>
    ValueTask OnEventAsync(UpstreamStream stream, UpstreamEvent e, CancellationToken ct);

    /// <summary>The stream is no longer read (lost, or this node stops or lost its lease): store what it produced.</summary>
    ValueTask OnStreamClosedAsync(string upstream, CancellationToken ct);

    /// <summary>
    /// The upstream was removed at run time, while this node holds its lease (<paramref name="lease"/>) and no longer
    /// reads its stream: tell the watchers of its sessions (an <c>error</c>, <c>upstream_not_found</c>) and store it.
    /// </summary>
    ValueTask OnUpstreamRemovedAsync(string upstream, string lease, CancellationToken ct);
}
