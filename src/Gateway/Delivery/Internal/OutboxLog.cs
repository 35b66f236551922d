
namespace OpencodeGateway.Delivery.Internal;

/// <summary>Log lines of the per-connection outboxes and of the silent-connection watch.</summary>
internal static partial class OutboxLog
{
    [LoggerMessage(8, LogLevel.Warning, "Connection {ConnectionId} dropped: its outbox passed {MaxMessages} messages or {MaxBytes} bytes (slow consumer)")]
    public static partial void SlowConsumer(ILogger logger, string connectionId, int maxMessages, long maxBytes);

    [LoggerMessage(9, LogLevel.Debug, "Connection {ConnectionId}: write failed")]
    public static partial void WriteFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(11, LogLevel.Information, "Connection {ConnectionId} closed: its client sent nothing for {Timeout} (gone or stuck)")]
    public static partial void SilentConnectionClosed(ILogger logger, string connectionId, TimeSpan timeout);
}
