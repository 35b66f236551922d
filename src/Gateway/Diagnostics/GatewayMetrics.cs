using System.Diagnostics.Metrics;

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

    private readonly Meter _meter;
    private readonly Counter<long> _upstreamEvents;
    private readonly Counter<long> _malformedEvents;
    private readonly Counter<long> _streamConnects;
    private readonly Counter<long> _reconnects;
    private readonly Counter<long> _eventsSent;
    private readonly Counter<long> _slowConsumers;
    private readonly Counter<long> _silentConnections;
    private readonly Counter<long> _limitRefusals;
    private readonly Histogram<double> _dispatchDuration;

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
        _limitRefusals = _meter.CreateCounter<long>("gateway.limits.refused", "{request}",
            "Requests, connections and hub calls refused by a limit (Gateway:Limits), by limit.");
        _dispatchDuration = _meter.CreateHistogram(DispatchDurationName, "s",
            "From an upstream event's bytes arriving to the event being written or queued for every watching connection.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DispatchBucketBounds });
    }

    /// <summary>Publishes <c>gateway.live_sessions</c>, read from <paramref name="count"/> at each collection.</summary>
    public void ObserveLiveSessions(Func<int> count) =>
        _meter.CreateObservableUpDownCounter("gateway.live_sessions", count, "{session}", "Sessions with live state (watched or recently active).");

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

    public void UpstreamEvent(string upstream) => _upstreamEvents.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void MalformedEvent(string upstream) => _malformedEvents.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void StreamConnected(string upstream) => _streamConnects.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void Reconnect(string upstream) => _reconnects.Add(1, new KeyValuePair<string, object?>("upstream", upstream));

    public void EventSent() => _eventsSent.Add(1);

    public void EventDispatched(TimeSpan elapsed) => _dispatchDuration.Record(elapsed.TotalSeconds);

    public void SlowConsumerDropped() => _slowConsumers.Add(1);

    public void SilentConnectionDropped() => _silentConnections.Add(1);

    /// <summary>One refusal by <paramref name="limit"/> (a <c>Gateway:Limits</c> setting's name).</summary>
    public void LimitRefused(string limit) => _limitRefusals.Add(1, new KeyValuePair<string, object?>("limit", limit));
}
