using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Diagnostics;

/// <summary>
/// The gateway's instruments (meter <c>OpencodeGateway</c>), exported by OpenTelemetry to <c>/metrics</c> and, when
/// configured, over OTLP (see <see cref="TelemetryServiceCollectionExtensions"/>).
/// </summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "OpencodeGateway";
    public const string DispatchDurationName = "gateway.pump.dispatch.duration";

    /// <summary>Bucket bounds (seconds) of <see cref="DispatchDurationName"/>: sub-millisecond, where the gateway's share lives.</summary>
    public static readonly IReadOnlyList<double> DispatchBucketBounds =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

    /// <summary>
    /// Bucket bounds (seconds) of join and snapshot durations: a join served from memory takes about a millisecond, one
    /// that fetches opencode's state tens to hundreds.
    /// </summary>
    public static readonly IReadOnlyList<double> RequestBucketBounds =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Bucket bounds (bytes) of <c>gateway.snapshot.size</c>: 1 KiB to 16 MiB by fours.</summary>
    public static readonly IReadOnlyList<long> SizeBucketBounds =
        [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216];

    private readonly Meter _meter;
    private readonly Counter<long> _upstreamEvents;
    private readonly Counter<long> _malformedEvents;
    private readonly Counter<long> _streamConnects;
    private readonly Counter<long> _reconnects;
    private readonly Counter<long> _eventsSent;
    private readonly Counter<long> _slowConsumers;
    private readonly Counter<long> _silentConnections;
    private readonly Histogram<double> _dispatchDuration;
    private readonly Histogram<double> _joinDuration;
    private readonly Histogram<double> _snapshotDuration;
    private readonly Histogram<long> _snapshotSize;
    private readonly Counter<long> _limitsRefused;
    private readonly Counter<long> _errors;
    private readonly ConcurrentQueue<Func<OutboxTotals>> _outboxes = new();

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _upstreamEvents = _meter.CreateCounter<long>("gateway.upstream.events", "{event}", "Events read from upstream event streams.");
        _malformedEvents = _meter.CreateCounter<long>("gateway.upstream.events.malformed", "{event}", "Upstream event lines skipped as malformed.");
        _streamConnects = _meter.CreateCounter<long>("gateway.upstream.stream.connects", "{connect}", "Upstream event stream connections established.");
        _reconnects = _meter.CreateCounter<long>("gateway.upstream.reconnects", "{reconnect}", "Reconnects of upstream event streams.");
        _eventsSent = _meter.CreateCounter<long>("gateway.session.events", "{event}", "Session events fanned out to session groups.");
        _slowConsumers = _meter.CreateCounter<long>("gateway.connections.slow_dropped", "{connection}", "Connections dropped because their outbox overflowed.");
        _silentConnections = _meter.CreateCounter<long>("gateway.connections.silent_dropped", "{connection}",
            "Hub connections closed because their client sent nothing for the client timeout.");
        _dispatchDuration = _meter.CreateHistogram(DispatchDurationName, "s",
            "From an upstream event's bytes arriving to the event being written or queued for every watching connection.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DispatchBucketBounds });
        _joinDuration = _meter.CreateHistogram("gateway.join.duration", "s",
            "Hub joins, from the call to its result: authorisation, the session's feed, and the events missed or a snapshot.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RequestBucketBounds });
        _snapshotDuration = _meter.CreateHistogram("gateway.snapshot.duration", "s",
            "Snapshots built (joins, pushed new epochs, /api/chat): opencode's state, fetched or cached, overlaid with the live state.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = RequestBucketBounds });
        _snapshotSize = _meter.CreateHistogram("gateway.snapshot.size", "By",
            "UTF-8 JSON bytes of a snapshot's messages and parts (the bulk of what it sends; the JSON protocol's size, MessagePack's is smaller).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = SizeBucketBounds });
        _limitsRefused = _meter.CreateCounter<long>("gateway.limits.refused", "{refusal}", "Calls, requests and connections refused by a limit (Gateway:Limits), by limit.");
        _errors = _meter.CreateCounter<long>("gateway.errors", "{error}",
            "Errors answered with a gateway error code (hub errors and HTTP problem answers), by code and surface (hub, http).");

        // Outboxes: read at each collection from every lifetime manager's connections, so sends pay nothing for them.
        _meter.CreateObservableCounter("gateway.outbox.messages", () => _outboxes.Sum(o => o().Messages), "{message}",
            "Messages handed to this node's hub connections (written or queued), one per receiving connection.");
        _meter.CreateObservableUpDownCounter("gateway.outbox.queue.length", () => _outboxes.Sum(o => o().QueuedMessages), "{message}",
            "Messages queued in this node's connection outboxes, waiting for their connection to take them.");
        _meter.CreateObservableUpDownCounter("gateway.outbox.queue.size", () => _outboxes.Sum(o => o().QueuedBytes), "By",
            "Bytes queued in this node's connection outboxes.");
        _meter.CreateObservableGauge("gateway.outbox.queue.max_size", () => _outboxes.Select(o => o().LargestQueuedBytes).DefaultIfEmpty().Max(), "By",
            "Bytes queued in this node's fullest connection outbox (dropped as a slow consumer past Gateway:Outbox:MaxQueuedBytes).");
    }

    /// <summary>Publishes <c>gateway.live_sessions</c>, read from <paramref name="count"/> at each collection.</summary>
    public void ObserveLiveSessions(Func<int> count) =>
        _meter.CreateObservableUpDownCounter("gateway.live_sessions", count, "{session}", "Sessions with live state (watched or recently active).");

    /// <summary>
    /// Adds a lifetime manager's connections to <c>gateway.outbox.messages</c>, <c>gateway.outbox.queue.length</c>,
    /// <c>gateway.outbox.queue.size</c> and <c>gateway.outbox.queue.max_size</c>, read from <paramref name="totals"/>
    /// at each collection.
    /// </summary>
    public void ObserveOutboxes(Func<OutboxTotals> totals) => _outboxes.Enqueue(totals);

    /// <summary>
    /// Publishes, by <c>upstream</c>, <c>gateway.upstream.lease.held</c> (1 while this node holds the upstream's event
    /// stream, else 0: summed over the cluster it must be 1) and <c>gateway.upstream.lease.fencing_token</c> (the fencing
    /// token it holds it under), read from <paramref name="leases"/> at each collection.
    /// </summary>
    public void ObserveUpstreamLeases(Func<IEnumerable<(string Upstream, long? Token)>> leases)
    {
        _meter.CreateObservableUpDownCounter("gateway.upstream.lease.held",
            () => leases().Select(l => new Measurement<int>(l.Token is null ? 0 : 1, new KeyValuePair<string, object?>("upstream", l.Upstream))),
            "{lease}", "Whether this node holds the upstream's lease and reads its event stream.");
        _meter.CreateObservableGauge("gateway.upstream.lease.fencing_token",
            () => leases().Where(l => l.Token is not null)
                .Select(l => new Measurement<long>(l.Token!.Value, new KeyValuePair<string, object?>("upstream", l.Upstream))),
            null, "The fencing token of the upstream's lease this node holds.");
    }

    /// <summary>
    /// Publishes, by <c>upstream</c>, <c>gateway.upstream.stream.connected</c>: 1 while this node reads the upstream's
    /// event stream and it is connected, else 0 (summed over a cluster's nodes it must be 1), read from
    /// <paramref name="streams"/> at each collection.
    /// </summary>
    public void ObserveUpstreamStreams(Func<IEnumerable<(string Upstream, bool Connected)>> streams) =>
        _meter.CreateObservableUpDownCounter("gateway.upstream.stream.connected",
            () => streams().Select(s => new Measurement<int>(s.Connected ? 1 : 0, new KeyValuePair<string, object?>("upstream", s.Upstream))),
            "{stream}", "Whether this node reads the upstream's event stream and it is connected.");

    /// <summary>
    /// Publishes, by <c>check</c>, <c>gateway.ready</c>: 1 while the readiness check passed when last run, else 0 (what
    /// <c>/readyz</c> answers), read from <paramref name="checks"/> at each collection.
    /// </summary>
    public void ObserveReadiness(Func<IEnumerable<(string Check, bool Healthy)>> checks) =>
        _meter.CreateObservableGauge("gateway.ready",
            () => checks().Select(c => new Measurement<int>(c.Healthy ? 1 : 0, new KeyValuePair<string, object?>("check", c.Check))),
            "{check}", "Whether the readiness check passed when last run (the session store; Redis in a cluster).");

    /// <summary>Publishes <c>gateway.history.pending</c>: batches of events queued for Redis and not written yet.</summary>
    public void ObserveHistoryPending(Func<long> pending) =>
        _meter.CreateObservableUpDownCounter("gateway.history.pending", pending, "{batch}",
            "Batches of session events this node read and has not written to Redis yet (it holds them while Redis does not answer).");

    /// <summary>
    /// Gives the series that alerts and the dashboard take <c>increase()</c> or <c>rate()</c> over a first value of 0, so
    /// their first event counts too (a series first seen at 1 has increased by nothing). Measurements count only once the
    /// meter provider listens: call it when the host has started.
    /// </summary>
    internal void StartSeries()
    {
        _slowConsumers.Add(0);
        _silentConnections.Add(0);
        foreach (var surface in new[] { ErrorSurface.Hub, ErrorSurface.Http })
        {
            _errors.Add(0, new KeyValuePair<string, object?>("code", GatewayErrorCodes.ServiceUnavailable),
                new KeyValuePair<string, object?>("surface", surface));
        }
    }

    public void UpstreamEvent(string upstream) => _upstreamEvents.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void MalformedEvent(string upstream) => _malformedEvents.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void StreamConnected(string upstream) => _streamConnects.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void Reconnect(string upstream) => _reconnects.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void EventSent() => _eventsSent.Add(1);

    public void EventDispatched(TimeSpan elapsed) => _dispatchDuration.Record(elapsed.TotalSeconds);

    public void SlowConsumerDropped() => _slowConsumers.Add(1);

    public void SilentConnectionDropped() => _silentConnections.Add(1);

    /// <summary>
    /// A hub join ended: <paramref name="result"/> is <c>recovered</c> (the events since the client's position),
    /// <c>snapshot</c> or <c>error</c>.
    /// </summary>
    public void Joined(TimeSpan elapsed, string result) =>
        _joinDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("result", result));

    /// <summary>
    /// A snapshot was built in <paramref name="elapsed"/>, its messages <paramref name="bytes"/> of JSON. Failed builds
    /// are not recorded: a join answers the error (<c>gateway.errors</c>, <c>result=error</c>), a feed tries again.
    /// </summary>
    public void SnapshotBuilt(TimeSpan elapsed, long bytes)
    {
        _snapshotDuration.Record(elapsed.TotalSeconds);
        _snapshotSize.Record(bytes);
    }

    /// <summary>A limit refused a call, a request or a connection; <paramref name="limit"/> is its <c>Gateway:Limits</c> setting's name.</summary>
    public void LimitRefused(string limit) => _limitsRefused.Add(1, new KeyValuePair<string, object?>("limit", limit));

    /// <summary>An error with a gateway code was answered on <paramref name="surface"/> (<see cref="ErrorSurface"/>).</summary>
    public void ErrorAnswered(string code, string surface) =>
        _errors.Add(1, new KeyValuePair<string, object?>("code", code), new KeyValuePair<string, object?>("surface", surface));
}

/// <summary>Where an error was answered: the <c>surface</c> tag of <c>gateway.errors</c>.</summary>
public static class ErrorSurface
{
    public const string Hub = "hub";
    public const string Http = "http";
}

/// <summary>A lifetime manager's outboxes at one moment (see <see cref="GatewayMetrics.ObserveOutboxes"/>).</summary>
/// <param name="Messages">Messages ever handed to its connections, the closed ones included.</param>
/// <param name="QueuedMessages">Messages queued now.</param>
/// <param name="QueuedBytes">Bytes queued now.</param>
/// <param name="LargestQueuedBytes">Bytes queued now in its fullest outbox.</param>
public readonly record struct OutboxTotals(long Messages, long QueuedMessages, long QueuedBytes, long LargestQueuedBytes);
