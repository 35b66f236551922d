using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Fanout.Internal;

/// <summary>Log lines of the fan-out: resynchronisation after continuity was lost.</summary>
internal static partial class FanoutLog
{
    [LoggerMessage(6, LogLevel.Information, "Upstream {Upstream}: event stream (re)connected, {Count} live sessions start a new epoch")]
    public static partial void Resynchronising(ILogger logger, string upstream, int count);

    [LoggerMessage(7, LogLevel.Warning, "Session {SessionId}: could not build a snapshot for its watchers ({Reason}); retrying")]
    public static partial void ResyncFailed(ILogger logger, string sessionId, string reason);

    [LoggerMessage(13, LogLevel.Warning, "Session {SessionId}: could not read missed events from the history ({Reason}); a snapshot replaces them")]
    public static partial void RepairFailed(ILogger logger, string sessionId, string reason);

    [LoggerMessage(14, LogLevel.Warning, "Session {SessionId}: no snapshot of the new epoch could be built; its events go out as they are and clients rejoin")]
    public static partial void ResyncGaveUp(ILogger logger, string sessionId);

    [LoggerMessage(15, LogLevel.Debug, "Evicted {Count} idle sessions")]
    public static partial void EvictedIdle(ILogger logger, int count);

    [LoggerMessage(22, LogLevel.Warning, "Session {SessionId}: could not find the run it belongs to ({Reason}); its {Type} reaches its own watchers only")]
    public static partial void AncestorsUnknown(ILogger logger, string sessionId, string type, string reason);

    [LoggerMessage(18, LogLevel.Warning, "Could not compare watched sessions with the history ({Reason}); trying again every interval (logged again after a success)")]
    public static partial void HeadCheckFailed(ILogger logger, string reason);

    [LoggerMessage(26, LogLevel.Information, "Upstream {Upstream} was removed: {Count} of its sessions got an upstream_not_found error")]
    public static partial void UpstreamRemoved(ILogger logger, string upstream, int count);
}
