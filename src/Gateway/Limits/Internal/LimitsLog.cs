
namespace OpencodeGateway.Limits.Internal;

/// <summary>Log lines of the per-user limits.</summary>
internal static partial class LimitsLog
{
    [LoggerMessage(70, LogLevel.Debug, "Refused by {Limit} ({Max}) for {Name}: {Detail}")]
    public static partial void Refused(ILogger logger, string limit, int max, string name, string detail);

    [LoggerMessage(71, LogLevel.Warning, "Could not give a {Kind} slot back in Redis ({Reason}); written again with this node's next renewal")]
    public static partial void ReleaseFailed(ILogger logger, string kind, string reason);

    [LoggerMessage(72, LogLevel.Warning, "Could not renew this node's limit counts in Redis ({Reason}); retrying")]
    public static partial void RenewFailed(ILogger logger, string reason);

    [LoggerMessage(73, LogLevel.Information, "This node's limit slots may have been dropped from Redis (a restart of Redis, or a pause past the lease TTL): {Count} written again")]
    public static partial void Rewritten(ILogger logger, int count);
}
