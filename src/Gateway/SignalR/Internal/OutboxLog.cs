using Microsoft.Extensions.Logging;

namespace OpencodeGateway.SignalR.Internal;

/// <summary>Log lines of the per-connection outboxes.</summary>
internal static partial class OutboxLog
{
    [LoggerMessage(8, LogLevel.Warning, "Connection {ConnectionId} dropped: its outbox passed {MaxMessages} messages or {MaxBytes} bytes (slow consumer)")]
    public static partial void SlowConsumer(ILogger logger, string connectionId, int maxMessages, long maxBytes);

    [LoggerMessage(9, LogLevel.Debug, "Connection {ConnectionId}: write failed")]
    public static partial void WriteFailed(ILogger logger, string connectionId, Exception exception);
}
