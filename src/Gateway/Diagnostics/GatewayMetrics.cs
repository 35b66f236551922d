using System.Diagnostics.Metrics;

namespace OpencodeGateway.Diagnostics;

/// <summary>
/// The gateway's instruments (meter <c>OpencodeGateway</c>). Totals are also kept as plain counters so that
/// <c>/metrics</c> and tests can read them without a listener.
/// </summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "OpencodeGateway";

    private readonly Counter<long> _upstreamEvents;
    private readonly Counter<long> _malformedEvents;
    private readonly Counter<long> _reconnects;
    private readonly Counter<long> _eventsSent;
    private readonly Counter<long> _slowConsumers;
    private long _upstreamEventsTotal;
    private long _malformedEventsTotal;
    private long _reconnectsTotal;
    private long _eventsSentTotal;
    private long _slowConsumersTotal;
    private long _streamConnectsTotal;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _upstreamEvents = meter.CreateCounter<long>("gateway.upstream.events", "{event}", "Events read from upstream event streams.");
        _malformedEvents = meter.CreateCounter<long>("gateway.upstream.events.malformed", "{event}", "Upstream event lines skipped as malformed.");
        _reconnects = meter.CreateCounter<long>("gateway.upstream.reconnects", "{reconnect}", "Reconnects of upstream event streams.");
        _eventsSent = meter.CreateCounter<long>("gateway.session.events", "{event}", "Session events fanned out to session groups.");
        _slowConsumers = meter.CreateCounter<long>("gateway.connections.slow_dropped", "{connection}", "Connections dropped because their outbox overflowed.");
    }

    public long UpstreamEvents => Interlocked.Read(ref _upstreamEventsTotal);
    public long MalformedEvents => Interlocked.Read(ref _malformedEventsTotal);
    public long Reconnects => Interlocked.Read(ref _reconnectsTotal);
    public long StreamConnects => Interlocked.Read(ref _streamConnectsTotal);
    public long EventsSent => Interlocked.Read(ref _eventsSentTotal);
    public long SlowConsumersDropped => Interlocked.Read(ref _slowConsumersTotal);

    public void UpstreamEvent(string upstream)
    {
        Interlocked.Increment(ref _upstreamEventsTotal);
        _upstreamEvents.Add(1, new KeyValuePair<string, object?>("upstream", upstream));
    }

    public void MalformedEvent(string upstream)
    {
        Interlocked.Increment(ref _malformedEventsTotal);
        _malformedEvents.Add(1, new KeyValuePair<string, object?>("upstream", upstream));
    }

    public void StreamConnected() => Interlocked.Increment(ref _streamConnectsTotal);

    public void Reconnect(string upstream)
    {
        Interlocked.Increment(ref _reconnectsTotal);
        _reconnects.Add(1, new KeyValuePair<string, object?>("upstream", upstream));
    }

    public void EventSent()
    {
        Interlocked.Increment(ref _eventsSentTotal);
        _eventsSent.Add(1);
    }

    public void SlowConsumerDropped()
    {
        Interlocked.Increment(ref _slowConsumersTotal);
        _slowConsumers.Add(1);
    }
}
