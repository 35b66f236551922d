using System.Collections.Concurrent;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Hubs.Internal;

/// <summary>
/// The sessions this node's compact connections watch (<see cref="EventForms.Compact"/>), each with its SignalR group of
/// compact connections and its session handles: the first argument of <see cref="ISessionClient.D"/>, one per epoch,
/// so a delta names its session and epoch in a few bytes. Handles are never reused on this node, so a client can never
/// take a delta of one session or epoch for another's.
/// </summary>
internal sealed class CompactSessions
{
    private readonly ConcurrentDictionary<string, CompactSession> _sessions = new(StringComparer.Ordinal);
    private readonly Lock _membershipLock = new();
    private int _lastHandle;

    /// <summary>The compact group of a session group (<see cref="Sessions.Live.SessionKey.GroupName"/>).</summary>
    public static string GroupOf(string sessionGroup) => sessionGroup + "|compact";

    /// <summary>Counts a compact connection in before it joins the session's compact group.</summary>
    public CompactSession Add(string sessionGroup)
    {
        lock (_membershipLock)
        {
            if (!_sessions.TryGetValue(sessionGroup, out var session))
            {
                session = new CompactSession(this, GroupOf(sessionGroup));
                _sessions[sessionGroup] = session;
            }

            session.Members++;
            return session;
        }
    }

    /// <summary>Counts a compact connection out after it left the session's compact group.</summary>
    public void Remove(string sessionGroup)
    {
        lock (_membershipLock)
        {
            if (_sessions.TryGetValue(sessionGroup, out var session) && --session.Members == 0)
            {
                _sessions.TryRemove(sessionGroup, out _);
            }
        }
    }

    /// <summary>The session, when a compact connection of this node watches it.</summary>
    public CompactSession? Find(string sessionGroup) => _sessions.GetValueOrDefault(sessionGroup);

    private int NextHandle() => Interlocked.Increment(ref _lastHandle);

    internal sealed class CompactSession(CompactSessions owner, string group)
    {
        // A few recent epochs: a late event of the previous epoch keeps its own handle, which clients that moved on ignore.
        private const int EpochsKept = 4;
        private readonly List<(long Epoch, int Handle)> _handles = new(1);

        /// <summary>The SignalR group of the session's compact connections on this node.</summary>
        public string Group { get; } = group;

        /// <summary>Guarded by the owner's membership lock.</summary>
        public int Members { get; set; }

        /// <summary>The session's handle in <paramref name="epoch"/>, given out on first use.</summary>
        public int HandleOf(long epoch)
        {
            lock (_handles)
            {
                foreach (var (known, handle) in _handles)
                {
                    if (known == epoch)
                    {
                        return handle;
                    }
                }

                var next = owner.NextHandle();
                if (_handles.Count == EpochsKept)
                {
                    _handles.RemoveAt(0);
                }

                _handles.Add((epoch, next));
                return next;
            }
        }
    }
}
