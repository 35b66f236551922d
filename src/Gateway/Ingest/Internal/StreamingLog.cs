
namespace OpencodeGateway.Ingest.Internal;

/// <summary>Log lines of the upstream event pump.</summary>
internal static partial class StreamingLog
{
    [LoggerMessage(1, LogLevel.Information, "Upstream {Upstream}: event stream connected to {Url}")]
    public static partial void StreamConnected(ILogger logger, string upstream, string url);

    [LoggerMessage(2, LogLevel.Warning, "Upstream {Upstream}: event stream lost ({Reason}); reconnect #{Attempt} in {DelayMs} ms")]
    public static partial void StreamLost(ILogger logger, string upstream, string reason, int attempt, long delayMs);

    [LoggerMessage(3, LogLevel.Warning, "Upstream {Upstream}: no bytes for {StallSeconds} s, treating the event stream as stalled")]
    public static partial void StreamStalled(ILogger logger, string upstream, double stallSeconds);

    [LoggerMessage(4, LogLevel.Warning, "Upstream {Upstream}: skipped a malformed event line ({Problem})")]
    public static partial void MalformedEvent(ILogger logger, string upstream, string problem);

    [LoggerMessage(5, LogLevel.Debug, "Upstream {Upstream}: ignored event {Type}")]
    public static partial void IgnoredEvent(ILogger logger, string upstream, string? type);

    [LoggerMessage(12, LogLevel.Error, "Upstream {Upstream}: event pump failed")]
    public static partial void PumpFailed(ILogger logger, string upstream, Exception exception);

    [LoggerMessage(17, LogLevel.Warning, "Upstream {Upstream}: lease {Lease} lost; this node stopped reading the event stream")]
    public static partial void LeaseLost(ILogger logger, string upstream, string lease);

    [LoggerMessage(24, LogLevel.Information, "Upstream {Upstream}: lease {Lease} handed over to spread the leases over the nodes; this node stopped reading the event stream")]
    public static partial void HandedOver(ILogger logger, string upstream, string lease);

    [LoggerMessage(25, LogLevel.Information, "Upstream {Upstream} was removed: its watchers were told and lease {Lease} retired")]
    public static partial void UpstreamRemoved(ILogger logger, string upstream, string lease);
}
