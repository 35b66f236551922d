using System.Collections.Concurrent;

namespace OpencodeGateway.Streaming;

/// <summary>Whether this node holds and reads each upstream's event stream, for readiness, metrics and diagnostics.</summary>
public sealed class UpstreamStreamState
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <param name="Lease">The lease this node holds the stream under (<c>{node}|{token}</c>), null when it does not.</param>
    public sealed record Entry(bool Connected, DateTimeOffset Since, int Reconnects, string? LastError, string? Lease);

    public IReadOnlyDictionary<string, Entry> Snapshot() => _entries;

    public bool IsConnected(string upstream) => _entries.TryGetValue(upstream, out var e) && e.Connected;

    internal void Set(string upstream, bool connected, DateTimeOffset now, string? error = null) =>
        _entries.AddOrUpdate(upstream,
            _ => new Entry(connected, now, 0, error, null),
            (_, old) => new Entry(connected, old.Connected == connected ? old.Since : now,
                old.Reconnects + (old.Connected && !connected ? 1 : 0), error ?? (connected ? null : old.LastError), old.Lease));

    internal void SetLease(string upstream, string? lease) =>
        _entries.AddOrUpdate(upstream,
            _ => new Entry(false, DateTimeOffset.MinValue, 0, null, lease),
            (_, old) => old with { Lease = lease });
}
