
namespace OpencodeGateway.Sequencing.Internal;

/// <summary>Log lines of sequencing.</summary>
internal static partial class SequencingLog
{
    [LoggerMessage(6, LogLevel.Information, "Upstream {Upstream}: event stream (re)connected, {Count} live sessions start a new epoch")]
    public static partial void Resynchronising(ILogger logger, string upstream, int count);

    [LoggerMessage(22, LogLevel.Warning, "Session {SessionId}: could not find the run it belongs to ({Reason}); its {Type} reaches its own watchers only")]
    public static partial void AncestorsUnknown(ILogger logger, string sessionId, string type, string reason);

    [LoggerMessage(26, LogLevel.Information, "Upstream {Upstream} was removed: {Count} of its sessions got an upstream_not_found error")]
    public static partial void UpstreamRemoved(ILogger logger, string upstream, int count);
}
