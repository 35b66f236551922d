namespace OpencodeGateway.Client;

/// <summary>How <see cref="GatewayClient.WatchAsync"/> watches a session.</summary>
public sealed class WatchOptions
{
    /// <summary>The session's upstream, when known (saves the gateway a lookup).</summary>
    public string? Upstream { get; init; }

    /// <summary>
    /// Start from a view held before, e.g. by a client that was disposed or pointed at another node: the first join asks
    /// for what came after it (<c>since</c>) instead of a snapshot.
    /// </summary>
    public SessionView? ResumeFrom { get; init; }

    /// <summary>
    /// Keep only the position (epoch, seq), not the content: the join, seq, epoch and rejoin rules still hold, and
    /// <see cref="GatewaySession.Updated"/> still reports every event and delta (a load generator's or a server's watcher
    /// that only needs to know what happened, cheaply).
    /// </summary>
    public bool PositionOnly { get; init; }

    /// <summary>
    /// Where <see cref="GatewaySession.Changed"/> and <see cref="GatewaySession.PropertyChanged"/> are raised: a UI's
    /// context (<c>SynchronizationContext.Current</c> on the UI thread of MAUI, WPF or WinForms), coalesced to one
    /// pending notification at a time. Null: on the thread that applied the change, after each message.
    /// </summary>
    public SynchronizationContext? SynchronizationContext { get; init; }

    /// <summary>
    /// A handler of <see cref="GatewaySession.Updated"/> attached before the join is sent, so it sees the first join's
    /// updates too (a handler attached after <see cref="GatewayClient.WatchAsync"/> returns sees what follows).
    /// </summary>
    public EventHandler<SessionUpdate>? Updated { get; init; }
}
