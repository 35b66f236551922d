namespace OpencodeGateway.Delivery.Internal;

/// <summary>Log lines of delivery: the feeds' resynchronisation after continuity was lost, their checks, eviction.</summary>
internal static partial class DeliveryLog
{
    [LoggerMessage(7, LogLevel.Warning, "Session {SessionId}: could not build a snapshot for its watchers ({Reason}); retrying")]
    public static partial void ResyncFailed(ILogger logger, string sessionId, string reason);

    [LoggerMessage(13, LogLevel.Warning, "Session {SessionId}: could not read missed events from the history ({Reason}); a snapshot replaces them")]
    public static partial void RepairFailed(ILogger logger, string sessionId, string reason);

    [LoggerMessage(14, LogLevel.Warning, "Session {SessionId}: no snapshot of the new epoch could be built; its events go out as they are and clients rejoin")]
    public static partial void ResyncGaveUp(ILogger logger, string sessionId);

    [LoggerMessage(15, LogLevel.Debug, "Evicted {Count} idle sessions")]
    public static partial void EvictedIdle(ILogger logger, int count);

    [LoggerMessage(18, LogLevel.Warning, "Could not compare watched sessions with the history ({Reason}); trying again every interval (logged again after a success)")]
    public static partial void HeadCheckFailed(ILogger logger, string reason);
}
