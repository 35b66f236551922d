using OpencodeGateway.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>
/// Every <c>SessionListChanged</c> a client heard, in order (repeats included), checked as it is heard: two changes of
/// one session at the same <c>updatedAt</c> must be the same change (the list rule keeps the latest by it).
/// </summary>
public sealed class HeardChanges
{
    private readonly Lock _gate = new();
    private readonly List<SessionListChange> _heard = [];
    private readonly List<string> _violations = [];

    public HeardChanges(GatewayClient client) => client.SessionListChanged += (_, change) =>
    {
        lock (_gate)
        {
            foreach (var earlier in _heard.Where(h => h.Session.SessionId == change.Session.SessionId && h.Session.UpdatedAt == change.Session.UpdatedAt))
            {
                if (earlier.Kind != change.Kind || earlier.Session.Title != change.Session.Title || earlier.Session.ArchivedAt != change.Session.ArchivedAt
                    || !earlier.Session.Tags.SequenceEqual(change.Session.Tags))
                {
                    _violations.Add($"two different changes of {change.Session.SessionId} at {change.Session.UpdatedAt:O}: {earlier.Kind} and {change.Kind}");
                }
            }

            _heard.Add(change);
        }
    };

    /// <summary>(kind, session id) of every change heard, in order.</summary>
    public IReadOnlyList<(string Kind, string SessionId)> Heard
    {
        get
        {
            lock (_gate)
            {
                return [.. _heard.Select(h => (h.Kind, h.Session.SessionId))];
            }
        }
    }

    public IReadOnlyList<string> Violations
    {
        get
        {
            lock (_gate)
            {
                return [.. _violations];
            }
        }
    }

    /// <summary>Whether a change of <paramref name="sessionId"/> satisfying <paramref name="condition"/> was heard.</summary>
    public bool Any(string sessionId, Func<SessionListChange, bool> condition)
    {
        lock (_gate)
        {
            return _heard.Any(h => h.Session.SessionId == sessionId && condition(h));
        }
    }
}
