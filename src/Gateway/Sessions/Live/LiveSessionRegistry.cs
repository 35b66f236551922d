using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OpencodeGateway.Sessions.History;

namespace OpencodeGateway.Sessions.Live;

/// <summary>The <see cref="LiveSession"/>s of this node, created on first event or join, forgotten when idle.</summary>
internal sealed class LiveSessionRegistry(IOptions<ReplayOptions> options, EpochSource epochs, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, LiveSession> _sessions = new(StringComparer.Ordinal);
    private readonly ReplayOptions _replay = options.Value;

    public int Count => _sessions.Count;

    /// <summary>Runs <paramref name="action"/> on the session's live state under its lock, creating it if needed.</summary>
    public T Use<T>(string upstream, string sessionId, Func<LiveSession, T> action)
    {
        var key = LiveSession.GroupNameOf(upstream, sessionId);
        while (true)
        {
            var session = _sessions.GetOrAdd(key, static (_, state) => state.Registry.Create(state.Upstream, state.SessionId),
                (Registry: this, Upstream: upstream, SessionId: sessionId));
            lock (session.Gate)
            {
                if (session.Evicted)
                {
                    continue;
                }

                session.LastActivity = time.GetTimestamp();
                return action(session);
            }
        }
    }

    public bool TryGet(string upstream, string sessionId, out LiveSession session) =>
        _sessions.TryGetValue(LiveSession.GroupNameOf(upstream, sessionId), out session!);

    /// <summary>
    /// The upstream's stream broke: events in the gap are gone. Watched sessions start a new epoch (returned, to be
    /// resynchronised); the others are forgotten.
    /// </summary>
    public List<LiveSession> ResetUpstream(string upstream)
    {
        var watched = new List<LiveSession>();
        foreach (var (key, session) in _sessions)
        {
            if (session.Upstream != upstream)
            {
                continue;
            }

            lock (session.Gate)
            {
                if (session.Watchers > 0)
                {
                    session.Reset(epochs.Next());
                    watched.Add(session);
                }
                else
                {
                    session.Evicted = true;
                    _sessions.TryRemove(key, out _);
                }
            }
        }

        return watched;
    }

    /// <summary>Forgets sessions nobody watches that saw no activity within the idle TTL. Returns how many.</summary>
    public int EvictIdle()
    {
        var evicted = 0;
        var now = time.GetTimestamp();
        foreach (var (key, session) in _sessions)
        {
            lock (session.Gate)
            {
                if (session.Watchers == 0 && time.GetElapsedTime(session.LastActivity, now) >= _replay.IdleSessionTtl)
                {
                    session.Evicted = true;
                    _sessions.TryRemove(key, out _);
                    evicted++;
                }
            }
        }

        return evicted;
    }

    private LiveSession Create(string upstream, string sessionId) =>
        new(upstream, sessionId, epochs.Next(), _replay.MaxEvents, _replay.MaxBytes, time.GetTimestamp());
}
