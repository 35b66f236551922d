using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Diagnostics;

/// <summary>Every log line of the gateway, source-generated.</summary>
internal static partial class Log
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

    [LoggerMessage(6, LogLevel.Information, "Upstream {Upstream}: stream resumed, resynchronising {Count} watched sessions in a new epoch")]
    public static partial void Resynchronising(ILogger logger, string upstream, int count);

    [LoggerMessage(7, LogLevel.Warning, "Session {SessionId}: could not push a fresh snapshot after reconnect ({Reason}); clients rejoin on the new epoch")]
    public static partial void ResyncFailed(ILogger logger, string sessionId, string reason);

    [LoggerMessage(8, LogLevel.Warning, "Connection {ConnectionId} dropped: its outbox passed {MaxMessages} messages or {MaxBytes} bytes (slow consumer)")]
    public static partial void SlowConsumer(ILogger logger, string connectionId, int maxMessages, long maxBytes);

    [LoggerMessage(9, LogLevel.Debug, "Connection {ConnectionId}: write failed")]
    public static partial void WriteFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "Unexpected error in hub method {Method}")]
    public static partial void HubMethodFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(11, LogLevel.Debug, "Evicted {Count} idle sessions")]
    public static partial void EvictedIdle(ILogger logger, int count);

    [LoggerMessage(12, LogLevel.Error, "Upstream {Upstream}: event pump failed")]
    public static partial void PumpFailed(ILogger logger, string upstream, Exception exception);
}
