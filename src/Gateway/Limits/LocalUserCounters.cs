using System.Collections.Concurrent;

namespace OpencodeGateway.Limits;

/// <summary>The single node's counts, in this process.</summary>
public sealed class LocalUserCounters(TimeProvider time) : IUserCounters
{
    // Names come and go (users, client addresses): empty windows and expired notes are swept now and then.
    private const int SweepEvery = 1024;

    private readonly ConcurrentDictionary<(string Kind, string Name), int> _slots = new();
    private readonly ConcurrentDictionary<(string Kind, string Name), Window> _windows = new();
    private readonly ConcurrentDictionary<(string Kind, string Name), Notes> _notes = new();
    private long _writes;

    public ValueTask<IAsyncDisposable?> TryTakeSlotAsync(string kind, string name, int max, CancellationToken ct)
    {
        var key = (kind, name);
        while (true)
        {
            var taken = _slots.GetValueOrDefault(key);
            if (taken >= max)
            {
                return ValueTask.FromResult<IAsyncDisposable?>(null);
            }

            if (taken == 0 ? _slots.TryAdd(key, 1) : _slots.TryUpdate(key, taken + 1, taken))
            {
                return ValueTask.FromResult<IAsyncDisposable?>(new Slot(this, key));
            }
        }
    }

    public ValueTask<int> SlotsAsync(string kind, string name, CancellationToken ct) => ValueTask.FromResult(_slots.GetValueOrDefault((kind, name)));

    public ValueTask<TimeSpan?> TryCountAsync(string kind, string name, int max, TimeSpan window, CancellationToken ct)
    {
        TimeSpan? wait;
        var log = _windows.GetOrAdd((kind, name), static (_, w) => new Window(w), window);
        lock (log)
        {
            var now = time.GetTimestamp();
            log.Length = window;
            log.Expire(time, now);
            if (log.Times.Count >= max)
            {
                wait = window - time.GetElapsedTime(log.Times.Peek(), now);
            }
            else
            {
                log.Times.Enqueue(now);
                wait = null;
            }
        }

        Wrote();
        return ValueTask.FromResult(wait);
    }

    public ValueTask<int> CountAsync(string kind, string name, TimeSpan window, CancellationToken ct)
    {
        if (!_windows.TryGetValue((kind, name), out var log))
        {
            return ValueTask.FromResult(0);
        }

        lock (log)
        {
            var now = time.GetTimestamp();
            var count = 0;
            foreach (var at in log.Times)
            {
                if (time.GetElapsedTime(at, now) < window)
                {
                    count++;
                }
            }

            return ValueTask.FromResult(count);
        }
    }

    public ValueTask NoteAsync(string kind, string name, string member, string value, TimeSpan keep, CancellationToken ct)
    {
        var notes = _notes.GetOrAdd((kind, name), static _ => new Notes());
        lock (notes)
        {
            notes.ByMember[member] = value;
            notes.ExpiresAt = time.GetUtcNow() + keep;
        }

        Wrote();
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyDictionary<string, string>> NotesAsync(string kind, string name, CancellationToken ct)
    {
        if (_notes.TryGetValue((kind, name), out var notes))
        {
            lock (notes)
            {
                if (notes.ExpiresAt > time.GetUtcNow())
                {
                    return ValueTask.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>(notes.ByMember, StringComparer.Ordinal));
                }
            }
        }

        return ValueTask.FromResult<IReadOnlyDictionary<string, string>>(new Dictionary<string, string>());
    }

    public ValueTask ForgetAsync(string kind, string name, IReadOnlyCollection<string> members, CancellationToken ct)
    {
        if (_notes.TryGetValue((kind, name), out var notes))
        {
            lock (notes)
            {
                foreach (var member in members)
                {
                    notes.ByMember.Remove(member);
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    private void Wrote()
    {
        if (Interlocked.Increment(ref _writes) % SweepEvery == 0)
        {
            Sweep();
        }
    }

    private void Sweep()
    {
        var now = time.GetTimestamp();
        foreach (var (key, log) in _windows)
        {
            lock (log)
            {
                log.Expire(time, now);
                if (log.Times.Count == 0)
                {
                    _windows.TryRemove(new KeyValuePair<(string, string), Window>(key, log));
                }
            }
        }

        var utcNow = time.GetUtcNow();
        foreach (var (key, notes) in _notes)
        {
            lock (notes)
            {
                if (notes.ExpiresAt <= utcNow || notes.ByMember.Count == 0)
                {
                    _notes.TryRemove(new KeyValuePair<(string, string), Notes>(key, notes));
                }
            }
        }
    }

    private void Release((string, string) key)
    {
        while (_slots.TryGetValue(key, out var taken))
        {
            if (taken <= 1 ? _slots.TryRemove(new KeyValuePair<(string, string), int>(key, taken)) : _slots.TryUpdate(key, taken - 1, taken))
            {
                return;
            }
        }
    }

    private sealed class Window(TimeSpan length)
    {
        public Queue<long> Times { get; } = new();

        public TimeSpan Length { get; set; } = length;

        public void Expire(TimeProvider time, long now)
        {
            while (Times.Count > 0 && time.GetElapsedTime(Times.Peek(), now) >= Length)
            {
                Times.Dequeue();
            }
        }
    }

    private sealed class Notes
    {
        public Dictionary<string, string> ByMember { get; } = new(StringComparer.Ordinal);

        public DateTimeOffset ExpiresAt { get; set; }
    }

    private sealed class Slot(LocalUserCounters owner, (string, string) key) : IAsyncDisposable
    {
        private int _released;

        public ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(key);
            }

            return ValueTask.CompletedTask;
        }
    }
}
