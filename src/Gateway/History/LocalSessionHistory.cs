using System.Collections.Concurrent;
using System.Collections.Immutable;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;

namespace OpencodeGateway.History;

/// <summary>The single-node history: each <see cref="LiveSession"/>'s own replay log and state, in this process.</summary>
internal sealed class LocalSessionHistory(LiveSessionRegistry registry) : ISessionHistory
{
    private readonly ConcurrentDictionary<SessionKey, ImmutableArray<Action<SessionEvent>>> _watchers = new();

    public void Append(LiveSession session, IReadOnlyList<SessionEvent> events)
    {
        // The events are in the session's replay log already (the sequencer appends as it numbers them).
        if (_watchers.TryGetValue(session.Key, out var handlers))
        {
            foreach (var evt in events)
            {
                foreach (var handler in handlers)
                {
                    handler(evt);
                }
            }
        }
    }

    public ValueTask<IReadOnlyList<SessionKey>> OpenStreamAsync(UpstreamStream stream, CancellationToken ct) =>
        ValueTask.FromResult<IReadOnlyList<SessionKey>>([]);

    public ValueTask<IReadOnlyList<SessionKey>> ActiveSessionsAsync(string upstream, CancellationToken ct) =>
        ValueTask.FromResult<IReadOnlyList<SessionKey>>([]);

    public ValueTask CloseStreamAsync(string upstream, CancellationToken ct) => ValueTask.CompletedTask;

    public ValueTask<string?> ConnectedStreamAsync(string upstream, CancellationToken ct) =>
        ValueTask.FromResult(registry.StreamOf(upstream) is { Connection: > 0 } stream ? stream.Id : null);

    // Nothing outlives this process: a session this node does not know starts afresh.
    public ValueTask<LiveSessionImage?> LoadAsync(SessionKey key, CancellationToken ct) => ValueTask.FromResult<LiveSessionImage?>(null);

    public ValueTask<long> NewEpochAsync(SessionKey key, long previous, CancellationToken ct) => ValueTask.FromResult(registry.NextEpoch(previous));

    public ValueTask<StreamPosition?> GetHeadAsync(SessionKey key, CancellationToken ct) =>
        ValueTask.FromResult(registry.TryGet(key, out _) ? registry.Use(key, static s => (StreamPosition?)new StreamPosition(s.Epoch, s.Seq)) : null);

    public ValueTask<SessionActivity?> ReadActivityAsync(SessionKey key, CancellationToken ct) =>
        ValueTask.FromResult(registry.TryGet(key, out _)
            ? registry.Use(key, static s => (SessionActivity?)new SessionActivity(new StreamPosition(s.Epoch, s.Seq), s.Busy))
            : null);

    public ValueTask<StreamPosition> EnsureAsync(SessionKey key, CancellationToken ct) =>
        ValueTask.FromResult(registry.Use(key, static s => new StreamPosition(s.Epoch, s.Seq)));

    public ValueTask<IReadOnlyList<SessionEvent>?> ReadAfterAsync(SessionKey key, StreamPosition since, CancellationToken ct)
    {
        IReadOnlyList<SessionEvent>? events = null;
        if (registry.TryGet(key, out _))
        {
            events = registry.Use(key, s =>
                s.Epoch == since.Epoch && since.Seq >= 0 && since.Seq <= s.Seq && s.Replay.TryGetAfter(since.Seq, s.Seq, out var after)
                    ? after
                    : null);
        }

        return ValueTask.FromResult(events);
    }

    public ValueTask<LiveSessionImage?> ReadImageAsync(SessionKey key, CancellationToken ct) =>
        ValueTask.FromResult(registry.TryGet(key, out _) ? registry.Use(key, static s => s.CreateImage()) : null);

    public ValueTask<IAsyncDisposable> WatchAsync(SessionKey key, Action<SessionEvent> onEvent, CancellationToken ct)
    {
        _watchers.AddOrUpdate(key, static (_, h) => [h], static (_, list, h) => list.Add(h), onEvent);
        return ValueTask.FromResult<IAsyncDisposable>(new Watch(this, key, onEvent));
    }

    private sealed class Watch(LocalSessionHistory owner, SessionKey key, Action<SessionEvent> handler) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            while (owner._watchers.TryGetValue(key, out var list))
            {
                var updated = list.Remove(handler);
                if (updated.IsEmpty
                        ? owner._watchers.TryRemove(new KeyValuePair<SessionKey, ImmutableArray<Action<SessionEvent>>>(key, list))
                        : owner._watchers.TryUpdate(key, updated, list))
                {
                    break;
                }
            }

            return ValueTask.CompletedTask;
        }
    }
}
