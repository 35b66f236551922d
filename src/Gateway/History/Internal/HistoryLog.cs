
namespace OpencodeGateway.History.Internal;

/// <summary>Log lines of the Redis history.</summary>
internal static partial class HistoryLog
{
    [LoggerMessage(60, LogLevel.Warning, "Redis history ({Subject}): write failed ({Reason}); kept and written again when Redis answers")]
    public static partial void WriteFailed(ILogger logger, string subject, string reason);

    [LoggerMessage(61, LogLevel.Error, "Redis history (session {SessionId}): a write was rejected ({Reason}); the session is written whole")]
    public static partial void WriteRejected(ILogger logger, string sessionId, string reason);

    [LoggerMessage(62, LogLevel.Warning, "Upstream {Upstream}: Redis refused a write under lease {Lease} (another node holds it now); further refusals under it are not logged")]
    public static partial void Fenced(ILogger logger, string upstream, string lease);

    [LoggerMessage(63, LogLevel.Information, "Session {SessionId}: Redis does not hold what follows; written whole at {Epoch}-{Seq}")]
    public static partial void Rewriting(ILogger logger, string sessionId, long epoch, long seq);

    [LoggerMessage(64, LogLevel.Warning, "Redis history: more than {Max} writes waiting for Redis; the oldest are dropped and their sessions written whole when it answers")]
    public static partial void Dropping(ILogger logger, int max);

    [LoggerMessage(65, LogLevel.Warning, "Session {SessionId}: skipped a malformed message from Redis ({Problem})")]
    public static partial void MalformedMessage(ILogger logger, string sessionId, string problem);

    [LoggerMessage(66, LogLevel.Warning, "Upstream {Upstream}: nobody holds the lease in Redis (it lost it); writes under lease {Lease} wait until it is held again")]
    public static partial void WaitingForLease(ILogger logger, string upstream, string lease);

    [LoggerMessage(67, LogLevel.Warning, "Session {SessionId}: Redis holds a newer epoch than {Epoch} (started elsewhere while Redis had lost its data); moved to epoch {NewEpoch}")]
    public static partial void EpochOvertaken(ILogger logger, string sessionId, long epoch, long newEpoch);
}
