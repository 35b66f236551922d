using System.Collections.Concurrent;

namespace OpencodeGateway.Streaming;

/// <summary>Whether each upstream's event stream is up, for readiness and diagnostics.</summary>
public sealed class UpstreamStreamState
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public sealed record Entry(bool Connected, DateTimeOffset Since, int Reconnects, string? LastError);

    public IReadOnlyDictionary<string, Entry> Snapshot() => _entries;

    public bool IsConnected(string upstream) => _entries.TryGetValue(upstream, out var e) && e.Connected;

    internal void Set(string upstream, bool connected, DateTimeOffset now, string? error = null) =>
        _entries.AddOrUpdate(upstream,
            _ => new Entry(connected, now, 0, error),
            (_, old) => new Entry(connected, old.Connected == connected ? old.Since : now,
                old.Reconnects + (old.Connected && !connected ? 1 : 0), error ?? (connected ? null : old.LastError)));
}
