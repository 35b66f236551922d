using System.Collections.Concurrent;
using OpencodeGateway.Leases;

namespace OpencodeGateway.Ingest;

/// <summary>Whether this node holds and reads each upstream's event stream, for readiness, metrics and diagnostics.</summary>
public sealed class UpstreamStreamState
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <param name="Lease">The lease this node holds the stream under (<c>{node}|{token}</c>), null when it does not.</param>
    /// <param name="LeaseToken">That lease's fencing token.</param>
    public sealed record Entry(bool Connected, DateTimeOffset Since, int Reconnects, string? LastError, string? Lease, long? LeaseToken);

    public IReadOnlyDictionary<string, Entry> Snapshot() => _entries;

    public bool IsConnected(string upstream) => _entries.TryGetValue(upstream, out var e) && e.Connected;

    internal void Set(string upstream, bool connected, DateTimeOffset now, string? error = null) =>
        _entries.AddOrUpdate(upstream,
            _ => new Entry(connected, now, 0, error, null, null),
            (_, old) => new Entry(connected, old.Connected == connected ? old.Since : now,
                old.Reconnects + (old.Connected && !connected ? 1 : 0), error ?? (connected ? null : old.LastError), old.Lease, old.LeaseToken));

    internal void SetLease(string upstream, IUpstreamLease? lease) =>
        _entries.AddOrUpdate(upstream,
            _ => new Entry(false, DateTimeOffset.MinValue, 0, null, lease?.Value, lease?.Token),
            (_, old) => old with { Lease = lease?.Value, LeaseToken = lease?.Token });

    /// <summary>Forgets an upstream that was removed.</summary>
    internal void Remove(string upstream) => _entries.TryRemove(upstream, out _);

    /// <summary>The fencing token of the upstream's lease this node holds, null when it holds none.</summary>
    internal long? LeaseToken(string upstream) => _entries.TryGetValue(upstream, out var e) ? e.LeaseToken : null;
}
