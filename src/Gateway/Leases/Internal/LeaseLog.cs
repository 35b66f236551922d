
namespace OpencodeGateway.Leases.Internal;

/// <summary>Log lines of the upstream leases.</summary>
internal static partial class LeaseLog
{
    [LoggerMessage(50, LogLevel.Information, "Upstream {Upstream}: this node ({NodeId}) holds the event stream's lease, fencing token {Token}")]
    public static partial void Acquired(ILogger logger, string upstream, string nodeId, long token);

    [LoggerMessage(51, LogLevel.Information, "Upstream {Upstream}: the event stream is held by {Holder}; waiting")]
    public static partial void Waiting(ILogger logger, string upstream, string holder);

    [LoggerMessage(52, LogLevel.Warning, "Upstream {Upstream}: could not take the lease ({Reason}); retrying")]
    public static partial void AcquireFailed(ILogger logger, string upstream, string reason);

    [LoggerMessage(53, LogLevel.Warning, "Upstream {Upstream}: lease {Lease} lost to {Holder}; this node stops reading the stream")]
    public static partial void Lost(ILogger logger, string upstream, string lease, string holder);

    [LoggerMessage(54, LogLevel.Warning, "Upstream {Upstream}: could not renew lease ({Reason}); holding the stream while Redis is unreachable")]
    public static partial void RenewFailed(ILogger logger, string upstream, string reason);

    [LoggerMessage(55, LogLevel.Information, "Upstream {Upstream}: lease {Lease} had expired while Redis was unreachable; nobody else took it, so it is held again")]
    public static partial void Reclaimed(ILogger logger, string upstream, string lease);

    [LoggerMessage(56, LogLevel.Information, "Upstream {Upstream}: lease {Lease} released")]
    public static partial void Released(ILogger logger, string upstream, string lease);

    [LoggerMessage(57, LogLevel.Warning, "Upstream {Upstream}: could not release the lease ({Reason}); it expires by itself")]
    public static partial void ReleaseFailed(ILogger logger, string upstream, string reason);

    [LoggerMessage(58, LogLevel.Information, "Upstream {Upstream}: handing lease {Lease} over; this node holds {Held}, its share is {Share}")]
    public static partial void HandingOver(ILogger logger, string upstream, string lease, int held, int share);

    [LoggerMessage(59, LogLevel.Information, "Upstream {Upstream}: lease {Lease} retired (the upstream was removed); no node takes it for {QuarantineSeconds} s")]
    public static partial void Retired(ILogger logger, string upstream, string lease, double quarantineSeconds);

    [LoggerMessage(49, LogLevel.Warning, "Could not share the leases' load with the other nodes ({Reason}); retrying")]
    public static partial void BalanceFailed(ILogger logger, string reason);
}
