using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Fanout.Internal;

/// <summary>Log lines of the fan-out: resynchronisation after continuity was lost.</summary>
internal static partial class FanoutLog
{
    [LoggerMessage(6, LogLevel.Information, "Upstream {Upstream}: stream resumed, resynchronising {Count} watched sessions in a new epoch")]
    public static partial void Resynchronising(ILogger logger, string upstream, int count);

    [LoggerMessage(7, LogLevel.Warning, "Session {SessionId}: could not push a fresh snapshot after reconnect ({Reason}); clients rejoin on the new epoch")]
    public static partial void ResyncFailed(ILogger logger, string sessionId, string reason);
}
