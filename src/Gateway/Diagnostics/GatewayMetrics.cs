using System.Diagnostics.Metrics;

namespace OpencodeGateway.Diagnostics;

/// <summary>
/// The gateway's instruments (meter <c>OpencodeGateway</c>). Totals and the dispatch-time buckets are also kept as
/// plain counters so that <c>/metrics</c> and tests can read them without a listener.
/// </summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "OpencodeGateway";

    private readonly Counter<long> _upstreamEvents;
    private readonly Counter<long> _malformedEvents;
    private readonly Counter<long> _reconnects;
    private readonly Counter<long> _eventsSent;
    private readonly Counter<long> _slowConsumers;
    private readonly Histogram<double> _dispatchDuration;
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
        _dispatchDuration = meter.CreateHistogram<double>("gateway.pump.dispatch.duration", "s",
            "From an upstream event's bytes arriving to the event being written or queued for every watching connection.");
    }

    /// <summary>Upper bounds, in seconds, of <see cref="DispatchDuration"/>'s buckets; one more bucket counts the rest.</summary>
    public static ReadOnlySpan<double> DispatchBucketBounds =>
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

    /// <summary>Time spent inside the gateway per upstream event, before the transports take over.</summary>
    public BucketCounts DispatchDuration { get; } = new(DispatchBucketBounds.Length + 1);

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

    public void EventDispatched(TimeSpan elapsed)
    {
        var seconds = elapsed.TotalSeconds;
        var bucket = DispatchBucketBounds.Length;
        for (var i = 0; i < DispatchBucketBounds.Length; i++)
        {
            if (seconds <= DispatchBucketBounds[i])
            {
                bucket = i;
                break;
            }
        }

        DispatchDuration.Add(bucket, seconds);
        _dispatchDuration.Record(seconds);
    }

    public void SlowConsumerDropped()
    {
        Interlocked.Increment(ref _slowConsumersTotal);
        _slowConsumers.Add(1);
    }
}

/// <summary>A histogram's per-bucket counts and sum, updated without locks.</summary>
public sealed class BucketCounts(int buckets)
{
    private readonly long[] _counts = new long[buckets];
    private long _sumTicks;

    public void Add(int bucket, double seconds)
    {
        Interlocked.Increment(ref _counts[bucket]);
        Interlocked.Add(ref _sumTicks, (long)(seconds * TimeSpan.TicksPerSecond));
    }

    /// <summary>Counts per bucket (not cumulative), read one by one: a concurrent add may land between reads.</summary>
    public long[] Counts() => [.. _counts.Select((_, i) => Interlocked.Read(ref _counts[i]))];

    public double SumSeconds => Interlocked.Read(ref _sumTicks) / (double)TimeSpan.TicksPerSecond;
}
