namespace OpencodeGateway.Streaming;

/// <summary>Where an upstream's event pump hands what it reads: the next stage of the event path.</summary>
internal interface IUpstreamEventSink
{
    /// <summary>
    /// A new connection of the upstream's event stream is up. Whatever the upstream emitted while no connection was
    /// reading is gone: continuity with earlier events is lost.
    /// </summary>
    void OnStreamConnected(string upstream);

    /// <summary>One normalised event of a session (never heartbeats, ignored or malformed lines).</summary>
    void OnEvent(string upstream, UpstreamEvent e);
}
