using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OpencodeGateway.Ingest;

namespace OpencodeGateway.Sequencing;

/// <summary>
/// The <see cref="LiveSession"/>s this node sequences (on a single node: every session; in a cluster: the sessions of the
/// upstreams whose stream it holds), created on first event or join, forgotten when idle.
/// </summary>
internal sealed class LiveSessionRegistry(IOptions<ReplayOptions> options, EpochSource epochs, TimeProvider time)
{
    private readonly ConcurrentDictionary<SessionKey, LiveSession> _sessions = new();
    private readonly ConcurrentDictionary<string, UpstreamStream> _streams = new(StringComparer.Ordinal);
    private readonly ReplayOptions _replay = options.Value;

    /// <summary>An observer of each new session's changes (a copy kept elsewhere: the cluster's history), if any.</summary>
    public Func<ILiveStateObserver>? NewObserver { get; init; }

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

    /// <summary>Adds a state built elsewhere (loaded from the store), unless one is there already; returns the one kept.</summary>
    public LiveSession GetOrAdd(LiveSession session) => _sessions.GetOrAdd(session.Key, session);

    /// <summary>A new, empty state in <paramref name="epoch"/>, continuous with the upstream's current stream.</summary>
    public LiveSession NewSession(SessionKey key, long epoch) =>
        new(key, epoch, _replay.MaxEvents, _replay.MaxBytes, time.GetTimestamp(), NewObserver?.Invoke()) { StreamId = StreamOf(key.Upstream)?.Id };

    /// <summary>The state an image holds, continuing its epoch.</summary>
    public LiveSession FromImage(LiveSessionImage image) =>
        LiveSession.FromImage(image, _replay.MaxEvents, _replay.MaxBytes, time.GetTimestamp(), NewObserver?.Invoke());

    /// <summary>The sessions of one upstream (a moment's view: sessions may come and go meanwhile).</summary>
    public IEnumerable<LiveSession> SessionsOf(string upstream) => _sessions.Values.Where(s => s.Upstream == upstream);

    /// <summary>The upstream's stream this node reads now, or null.</summary>
    public UpstreamStream? StreamOf(string upstream) => _streams.TryGetValue(upstream, out var stream) ? stream : null;

    public void SetStream(string upstream, UpstreamStream? stream)
    {
        if (stream is null)
        {
            _streams.TryRemove(upstream, out _);
        }
        else
        {
            _streams[upstream] = stream;
        }
    }

    /// <summary>A fresh epoch of this node, greater than <paramref name="previous"/>.</summary>
    public long NextEpoch(long previous = 0) => Math.Max(epochs.Next(), previous + 1);

    /// <summary>Forgets every session of an upstream (another node sequenced them meanwhile: the store has them now).</summary>
    public void ForgetUpstream(string upstream)
    {
        foreach (var (key, session) in _sessions)
        {
            if (session.Upstream == upstream)
            {
                lock (session.Gate)
                {
                    session.Evicted = true;
                    _sessions.TryRemove(key, out _);
                }
            }
        }
    }

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

    private LiveSession Create(SessionKey key) => NewSession(key, epochs.Next());
}
