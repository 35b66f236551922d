using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>What one <see cref="SessionUpdate"/> was.</summary>
public enum SessionUpdateKind
{
    /// <summary>A snapshot replaced the view: a join's (<see cref="SessionUpdate.JoinResult"/> set) or a pushed one.</summary>
    Snapshot,

    /// <summary>A join recovered from <c>since</c>: its events follow, each as an <see cref="Event"/> update.</summary>
    Recovered,

    /// <summary>A <c>SessionEvent</c> was applied.</summary>
    Event,

    /// <summary>A compact delta (<c>D</c>) was applied.</summary>
    Delta,

    /// <summary>An event, delta or pushed snapshot at or before the view's position arrived again: ignored.</summary>
    Duplicate,

    /// <summary>A compact delta of a session handle the session no longer (or not yet) holds: ignored (client rule 8).</summary>
    Ignored,

    /// <summary>
    /// The view cannot take what arrived (<see cref="SessionUpdate.RejoinReason"/>): the client rejoins, with
    /// <see cref="SessionUpdate.RejoinSince"/> or for a snapshot.
    /// </summary>
    Rejoin,

    /// <summary>A page of earlier messages was added before the ones held.</summary>
    EarlierPage,

    /// <summary>The gateway's metadata of the session changed through this client.</summary>
    Metadata,

    /// <summary>A rejoin failed for good: <see cref="SessionView.JoinError"/> says why.</summary>
    JoinFailed,
}

/// <summary>Why the view asked to rejoin.</summary>
public enum RejoinReason
{
    /// <summary>An event's seq skipped events (client rule 3): rejoin with <c>since</c>.</summary>
    Gap,

    /// <summary>A delta's offset lies past the text held (rule 4): rejoin with <c>since</c>, then for a snapshot.</summary>
    DeltaGap,

    /// <summary>An event of another epoch: continuity was lost (rule 3): rejoin for a snapshot.</summary>
    Epoch,

    /// <summary>Recovered events did not line up with the position: rejoin for a snapshot.</summary>
    RecoveryFailed,

    /// <summary>A compact delta or <c>copies</c> named a part field handle never introduced (rule 8): rejoin for a snapshot.</summary>
    UnknownHandle,
}

/// <summary>
/// One thing that happened to a watched session's view, raised by <see cref="GatewaySession.Updated"/> for every item
/// the client handles, in order, before the next one: the place for checks at every event a client applies.
/// </summary>
public sealed class SessionUpdate : EventArgs
{
    internal SessionUpdate(SessionUpdateKind kind, SessionView previous, SessionView view, long receivedAt)
    {
        Kind = kind;
        Previous = previous;
        View = view;
        ReceivedAt = receivedAt;
    }

    public SessionUpdateKind Kind { get; }

    /// <summary>The view before this update.</summary>
    public SessionView Previous { get; }

    /// <summary>The view after it (the same object as <see cref="Previous"/> when nothing changed).</summary>
    public SessionView View { get; }

    /// <summary>When what this update handles arrived (<see cref="TimeProvider.GetTimestamp"/> of the client's clock).</summary>
    public long ReceivedAt { get; }

    /// <summary>The event (<see cref="SessionUpdateKind.Event"/>, a duplicate or one that made the client rejoin).</summary>
    public SessionEvent? Event { get; init; }

    /// <summary>The compact delta (<see cref="SessionUpdateKind.Delta"/>, a duplicate, ignored, or one that made it rejoin).</summary>
    public CompactDelta? Delta { get; init; }

    /// <summary>The snapshot (<see cref="SessionUpdateKind.Snapshot"/>, or a pushed one no newer than the view).</summary>
    public SessionSnapshot? Snapshot { get; init; }

    /// <summary>The join's result (<see cref="SessionUpdateKind.Snapshot"/> of a join, <see cref="SessionUpdateKind.Recovered"/>).</summary>
    public JoinResult? JoinResult { get; init; }

    public RejoinReason? RejoinReason { get; init; }

    /// <summary>The <c>since</c> of the rejoin asked for (null: a snapshot).</summary>
    public StreamPosition? RejoinSince { get; init; }
}

/// <summary>The arguments of one compact delta (<c>ISessionClient.D</c>).</summary>
/// <param name="S">The session handle: the session and its epoch on this connection.</param>
/// <param name="Seq">The event's seq in that epoch.</param>
/// <param name="H">The part field handle.</param>
/// <param name="Offset">The field's length in UTF-16 code units before the delta.</param>
/// <param name="Delta">The text appended.</param>
public sealed record CompactDelta(int S, long Seq, int H, int Offset, string Delta);
