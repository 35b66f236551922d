using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.History;

/// <summary>
/// The recent events of each session and the live state they produced, written by the node that sequences the
/// session (its <see cref="ISequencedEventSink"/> side) and read by every node: in this process on a single node, in
/// Redis in a cluster.
/// </summary>
internal interface ISessionHistory : ISequencedEventSink
{
    /// <summary>The id of the upstream's stream connection being read now (by any node), or null when none is.</summary>
    ValueTask<string?> ConnectedStreamAsync(string upstream, CancellationToken ct);

    /// <summary>The session's latest position, or null when it has no live state.</summary>
    ValueTask<StreamPosition?> GetHeadAsync(SessionKey key, CancellationToken ct);

    /// <summary>The session's latest position and whether it runs (busy or retrying), or null when it has no live state.</summary>
    ValueTask<SessionActivity?> ReadActivityAsync(SessionKey key, CancellationToken ct);

    /// <summary>The session's position, starting an epoch for it when it has no live state.</summary>
    ValueTask<StreamPosition> EnsureAsync(SessionKey key, CancellationToken ct);

    /// <summary>
    /// Every event after <paramref name="since"/>, when the history still holds all of them in that epoch (an empty
    /// list when <paramref name="since"/> is the latest position); null when it does not, or the position is unknown.
    /// </summary>
    ValueTask<IReadOnlyList<SessionEvent>?> ReadAfterAsync(SessionKey key, StreamPosition since, CancellationToken ct);

    /// <summary>The session's live state, consistent with its latest position; null when it has none.</summary>
    ValueTask<LiveSessionImage?> ReadImageAsync(SessionKey key, CancellationToken ct);

    /// <summary>
    /// Passes the session's new events to <paramref name="onEvent"/> until disposed. Events may arrive late, twice or
    /// not at all (a cluster's pub/sub is at-most-once): the receiver orders them by seq and repairs gaps with
    /// <see cref="ReadAfterAsync"/>.
    /// </summary>
    ValueTask<IAsyncDisposable> WatchAsync(SessionKey key, Action<SessionEvent> onEvent, CancellationToken ct);
}

/// <summary>A session's latest position and whether it runs now (its status is <c>busy</c> or <c>retry</c>).</summary>
internal sealed record SessionActivity(StreamPosition Head, bool Busy);
