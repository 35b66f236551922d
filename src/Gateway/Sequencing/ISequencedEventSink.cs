using OpencodeGateway.Contracts;
using OpencodeGateway.Ingest;

namespace OpencodeGateway.Sequencing;

/// <summary>
/// Where the sequencer hands what it numbered, and where it asks for epochs and for the state of sessions another node
/// sequenced before: the history, which comes after it on the event path and implements this (as the sequencer
/// implements the pumps' <see cref="IUpstreamEventSink"/>): no component imports one after it.
/// </summary>
internal interface ISequencedEventSink
{
    /// <summary>
    /// Records events the sequencer just emitted, in seq order, and passes them on to the session's watchers. Called
    /// under the session's lock; never waits.
    /// </summary>
    void Append(LiveSession session, IReadOnlyList<SessionEvent> events);

    /// <summary>
    /// A new connection of an upstream's stream is read by this node: returns the sessions of the upstream whose live
    /// state the store holds (each must be brought onto the new stream); on a single node, none beyond this node's own.
    /// </summary>
    ValueTask<IReadOnlyList<SessionKey>> OpenStreamAsync(UpstreamStream stream, CancellationToken ct);

    /// <summary>
    /// The sessions of an upstream whose live state the store holds (in a cluster: every node's, from Redis); on a single
    /// node, none beyond this node's own.
    /// </summary>
    ValueTask<IReadOnlyList<SessionKey>> ActiveSessionsAsync(string upstream, CancellationToken ct);

    /// <summary>The upstream's stream is no longer read: returns once what was appended for it is stored (bounded).</summary>
    ValueTask CloseStreamAsync(string upstream, CancellationToken ct);

    /// <summary>The live state the store holds for a session this node does not sequence yet; null when it holds none.</summary>
    ValueTask<LiveSessionImage?> LoadAsync(SessionKey key, CancellationToken ct);

    /// <summary>A new epoch for the session, greater than <paramref name="previous"/> (cluster-wide in a cluster).</summary>
    ValueTask<long> NewEpochAsync(SessionKey key, long previous, CancellationToken ct);
}
