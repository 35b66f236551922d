using System.Globalization;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Limits;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.Sessions.Internal;

/// <summary>
/// Admits a user's prompts: <see cref="LimitsOptions.BusySessionsPerUser"/>, then <see cref="LimitsOptions.PromptsPerMinute"/>.
/// The sessions a user ran are noted (in the limits' counts, so every node sees them) with the session's position when
/// the prompt was sent; a noted session still runs while its status (in the history) is busy, or for a few seconds after
/// the prompt while nothing happened in it yet (opencode's busy status follows the prompt). The others are forgotten.
/// </summary>
internal sealed class PromptAdmission(UserLimits limits, ISessionHistory history, TimeProvider time)
{
    // How long a prompted session counts as running before its first event: the busy status arrives within
    // milliseconds; a prompt opencode refused stops counting after this.
    private static readonly TimeSpan FirstEventGrace = TimeSpan.FromSeconds(15);

    // How long a user's notes outlive their last prompt (sessions running longer are busy: they count again once noted).
    private static readonly TimeSpan NotesKept = TimeSpan.FromDays(1);

    /// <summary>
    /// Refuses a prompt of <paramref name="user"/> to <paramref name="key"/> (null: a session about to be created) that
    /// would make more than <see cref="LimitsOptions.BusySessionsPerUser"/> of the user's sessions run, or past
    /// <see cref="LimitsOptions.PromptsPerMinute"/>; counts it otherwise. Returns the admission, to note once sent.
    /// </summary>
    public async ValueTask<Admitted> AdmitAsync(GatewayUser user, SessionKey? key, CancellationToken ct)
    {
        if (user.IsAdmin)
        {
            return new Admitted(null);
        }

        // The user's notes and the target's position in parallel: one round trip in a cluster, not two.
        var notesRead = limits.Counters.NotesAsync(UserLimits.BusyKind, user.UserId, ct).AsTask();
        var targetRead = key is { } k ? history.ReadActivityAsync(k, ct).AsTask() : Task.FromResult<SessionActivity?>(null);
        var notes = await notesRead;
        var target = await targetRead;
        var targetMember = key is { } t ? Member(t) : null;
        var runs = await Task.WhenAll(notes.Select(async n => (Member: n.Key,
            Runs: Runs(n.Value, n.Key == targetMember ? target : await history.ReadActivityAsync(Key(n.Key), ct)))));
        var finished = runs.Where(r => !r.Runs).Select(r => r.Member).ToList();
        if (finished.Count > 0)
        {
            await limits.Counters.ForgetAsync(UserLimits.BusyKind, user.UserId, finished, ct);
        }

        var targetRuns = runs.Any(r => r.Runs && r.Member == targetMember);
        if (!targetRuns && runs.Count(r => r.Runs) >= limits.Options.BusySessionsPerUser)
        {
            throw limits.BusySessionsRefused(user);
        }

        await limits.CountPromptAsync(user, ct);
        return new Admitted(target?.Head);
    }

    /// <summary>
    /// Notes that <paramref name="user"/> runs <paramref name="key"/> from now, at the position it had when admitted:
    /// before the prompt is sent, so a burst of prompts sees it.
    /// </summary>
    public async ValueTask NoteAsync(GatewayUser user, SessionKey key, Admitted admitted, CancellationToken ct)
    {
        if (user.IsAdmin)
        {
            return;
        }

        var head = admitted.Head;
        var note = string.Create(CultureInfo.InvariantCulture, $"{time.GetUtcNow().ToUnixTimeMilliseconds()}|{head?.Epoch ?? 0}|{head?.Seq ?? 0}");
        await limits.Counters.NoteAsync(UserLimits.BusyKind, user.UserId, Member(key), note, NotesKept, ct);
    }

    /// <summary>Forgets the note of a prompt that was not sent.</summary>
    public async ValueTask ForgetAsync(GatewayUser user, SessionKey key, CancellationToken ct)
    {
        if (!user.IsAdmin)
        {
            await limits.Counters.ForgetAsync(UserLimits.BusyKind, user.UserId, [Member(key)], ct);
        }
    }

    private static string Member(SessionKey key) => $"{key.Upstream}/{key.SessionId}";

    private static SessionKey Key(string member)
    {
        var slash = member.LastIndexOf('/');
        return new SessionKey(member[..Math.Max(slash, 0)], member[(slash + 1)..]);
    }

    // Whether a noted session still runs: busy now, or prompted a moment ago and silent since.
    private bool Runs(string note, SessionActivity? activity)
    {
        var fields = note.Split('|');
        if (fields.Length != 3 || !long.TryParse(fields[0], CultureInfo.InvariantCulture, out var at)
            || !long.TryParse(fields[1], CultureInfo.InvariantCulture, out var epoch) || !long.TryParse(fields[2], CultureInfo.InvariantCulture, out var seq))
        {
            return false;
        }

        if (activity is { Busy: true })
        {
            return true;
        }

        var unchanged = activity is null ? epoch == 0 : activity.Head.Epoch == epoch && activity.Head.Seq == seq;
        return unchanged && time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(at) < FirstEventGrace;
    }

    /// <summary>An admitted prompt: the target session's position then (null for a new session or one with no live state).</summary>
    internal readonly record struct Admitted(StreamPosition? Head);
}
