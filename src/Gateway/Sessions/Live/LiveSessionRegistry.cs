using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Sessions.Live;

/// <summary>The <see cref="LiveSession"/>s this node sequences, created on first event or join, forgotten when idle.</summary>
internal sealed class LiveSessionRegistry(IOptions<ReplayOptions> options, EpochSource epochs, TimeProvider time)
{
    private readonly ConcurrentDictionary<SessionKey, LiveSession> _sessions = new();
    private readonly ReplayOptions _replay = options.Value;

    public int Count => _sessions.Count;

    /// <summary>Runs <paramref name="action"/> on the session's live state under its lock, creating it if needed.</summary>
    public T Use<T>(SessionKey key, Func<LiveSession, T> action)
    {
        while (true)
        {
            var session = _sessions.GetOrAdd(key, static (k, registry) => registry.Create(k), this);
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

    public bool TryGet(SessionKey key, out LiveSession session) => _sessions.TryGetValue(key, out session!);

    /// <summary>The sessions of one upstream (a moment's view: sessions may come and go meanwhile).</summary>
    public IEnumerable<LiveSession> SessionsOf(string upstream) => _sessions.Values.Where(s => s.Upstream == upstream);

    /// <summary>A fresh epoch, never used before on this node.</summary>
    public long NextEpoch() => epochs.Next();

    /// <summary>
    /// Forgets the sessions that saw no activity within the idle TTL and that <paramref name="isWatched"/> says nobody
    /// on this node watches. Returns how many.
    /// </summary>
    public int EvictIdle(Func<SessionKey, bool> isWatched)
    {
        var evicted = 0;
        var now = time.GetTimestamp();
        foreach (var (key, session) in _sessions)
        {
            lock (session.Gate)
            {
                if (time.GetElapsedTime(session.LastActivity, now) >= _replay.IdleSessionTtl && !isWatched(key))
                {
                    session.Evicted = true;
                    _sessions.TryRemove(key, out _);
                    evicted++;
                }
            }
        }

        return evicted;
    }

    private LiveSession Create(SessionKey key) =>
        new(key, epochs.Next(), _replay.MaxEvents, _replay.MaxBytes, time.GetTimestamp());
}
