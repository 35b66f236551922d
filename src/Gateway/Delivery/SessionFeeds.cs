using OpencodeGateway.Diagnostics;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Store;

namespace OpencodeGateway.Delivery;

/// <summary>
/// The <see cref="SessionFeed"/>s of this node: one per session at least one local connection or in-process
/// subscriber watches, shared by all of them, gone with the last one.
/// </summary>
internal sealed class SessionFeeds
{
    private readonly Dictionary<SessionKey, Entry> _entries = [];
    private readonly Lock _lock = new();
    private readonly ISessionHistory _history;
    private readonly FeedContext _context;

    public SessionFeeds(ISessionHistory history, SnapshotService snapshots, ISessionStore store, ISessionBroadcaster broadcaster,
        SessionSubscriptions subscriptions, GatewayMetrics metrics, TimeProvider time, ILogger<SessionFeeds> logger)
    {
        _history = history;
        _context = new FeedContext(history, snapshots, store, broadcaster, subscriptions, metrics, time, logger);
    }

    /// <summary>Sessions with a feed on this node.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    public bool IsWatched(SessionKey key)
    {
        lock (_lock)
        {
            return _entries.ContainsKey(key);
        }
    }

    /// <summary>
    /// Counts the caller as a watcher of the session and returns once the session's feed delivers its events on this
    /// node. Dispose the result to stop watching.
    /// </summary>
    public async Task<IAsyncDisposable> AcquireAsync(SessionKey key, CancellationToken ct)
    {
        Entry entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out entry!))
            {
                entry = new Entry(key, new SessionFeed(key, _context));
                _entries[key] = entry;
                entry.Started = StartAsync(entry);
            }

            entry.Watchers++;
        }

        var lease = new Lease(this, entry);
        try
        {
            await entry.Started.WaitAsync(ct);
            return lease;
        }
        catch
        {
            await lease.DisposeAsync();
            throw;
        }
    }

    /// <summary>Compares every feed's position with the history's head (pub/sub may lose messages) and repairs.</summary>
    public async Task CheckHeadsAsync(CancellationToken ct)
    {
        List<Entry> entries;
        lock (_lock)
        {
            entries = [.. _entries.Values];
        }

        foreach (var entry in entries)
        {
            if (!entry.Started.IsCompletedSuccessfully)
            {
                continue;
            }

            entry.Feed.OnHead(await _history.GetHeadAsync(entry.Key, ct));
        }
    }

    private async Task StartAsync(Entry entry)
    {
        await Task.Yield(); // outside the registry's lock
        try
        {
            // Receive first, then read the position: nothing falls between.
            entry.Watch = await _history.WatchAsync(entry.Key, entry.Feed.Offer, CancellationToken.None);
            entry.Feed.Start(await _history.EnsureAsync(entry.Key, CancellationToken.None));
        }
        catch
        {
            lock (_lock)
            {
                if (_entries.TryGetValue(entry.Key, out var current) && current == entry)
                {
                    _entries.Remove(entry.Key);
                }
            }

            if (entry.Watch is { } watch)
            {
                await watch.DisposeAsync();
            }

            throw;
        }
    }

    private async ValueTask ReleaseAsync(Entry entry)
    {
        lock (_lock)
        {
            if (--entry.Watchers > 0 || !_entries.TryGetValue(entry.Key, out var current) || current != entry)
            {
                return;
            }

            _entries.Remove(entry.Key);
        }

        try
        {
            await entry.Started;
        }
        catch
        {
            return; // never started: nothing to stop
        }

        await entry.Watch!.DisposeAsync();
    }

    private sealed class Entry(SessionKey key, SessionFeed feed)
    {
        public SessionKey Key { get; } = key;
        public SessionFeed Feed { get; } = feed;
        public int Watchers { get; set; }
        public Task Started { get; set; } = Task.CompletedTask;
        public IAsyncDisposable? Watch { get; set; }
    }

    private sealed class Lease(SessionFeeds owner, Entry entry) : IAsyncDisposable
    {
        private int _disposed;

        public ValueTask DisposeAsync() =>
            Interlocked.Exchange(ref _disposed, 1) == 0 ? owner.ReleaseAsync(entry) : ValueTask.CompletedTask;
    }
}
