namespace OpencodeGateway.Limits;

/// <summary>
/// The counts behind the per-user limits, shared by every node that serves the same users: in this process on a single
/// node (<see cref="LocalUserCounters"/>), in Redis in a cluster (<see cref="RedisUserCounters"/>). A
/// <c>kind</c> names what is counted; a <c>name</c> whose it is (a user id, a client address): both opaque.
/// </summary>
public interface IUserCounters
{
    /// <summary>
    /// Takes one of <paramref name="name"/>'s slots of <paramref name="kind"/> when fewer than <paramref name="max"/> are
    /// taken (on any node); null otherwise. Disposing the result gives the slot back. A node that stops without giving
    /// its slots back (killed) stops counting within the cluster's lease TTL.
    /// </summary>
    ValueTask<IAsyncDisposable?> TryTakeSlotAsync(string kind, string name, int max, CancellationToken ct);

    /// <summary>The slots of <paramref name="kind"/> that <paramref name="name"/> holds now, on every live node.</summary>
    ValueTask<int> SlotsAsync(string kind, string name, CancellationToken ct);

    /// <summary>
    /// Counts one occurrence of <paramref name="kind"/> for <paramref name="name"/> when fewer than <paramref name="max"/>
    /// happened within the last <paramref name="window"/> (a sliding window); otherwise counts nothing and returns how
    /// long until one more is allowed.
    /// </summary>
    ValueTask<TimeSpan?> TryCountAsync(string kind, string name, int max, TimeSpan window, CancellationToken ct);

    /// <summary>Occurrences of <paramref name="kind"/> for <paramref name="name"/> within the last <paramref name="window"/>.</summary>
    ValueTask<int> CountAsync(string kind, string name, TimeSpan window, CancellationToken ct);

    /// <summary>
    /// Notes <paramref name="value"/> under <paramref name="member"/> (replacing an earlier note of it); the notes of
    /// <paramref name="name"/> are forgotten <paramref name="keep"/> after the last one.
    /// </summary>
    ValueTask NoteAsync(string kind, string name, string member, string value, TimeSpan keep, CancellationToken ct);

    /// <summary>The notes of <paramref name="name"/>, by member.</summary>
    ValueTask<IReadOnlyDictionary<string, string>> NotesAsync(string kind, string name, CancellationToken ct);

    /// <summary>Forgets the notes of <paramref name="members"/>.</summary>
    ValueTask ForgetAsync(string kind, string name, IReadOnlyCollection<string> members, CancellationToken ct);
}
