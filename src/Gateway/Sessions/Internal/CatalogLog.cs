
namespace OpencodeGateway.Sessions.Internal;

/// <summary>Log lines of the session catalog.</summary>
internal static partial class CatalogLog
{
    [LoggerMessage(101, LogLevel.Warning, "Session {SessionId}: the record could not be written, deleting the upstream session again")]
    public static partial void CreateRolledBack(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(102, LogLevel.Error, "Session {SessionId}: the record could not be written AND the upstream session could not be deleted; it is orphaned on upstream {Upstream}")]
    public static partial void CreateOrphaned(ILogger logger, string sessionId, string upstream, Exception exception);

    [LoggerMessage(106, LogLevel.Information, "Session {SessionId}: adopted by admin {AdminId} for owner {OwnerId}")]
    public static partial void SessionAdopted(ILogger logger, string sessionId, string adminId, string ownerId);

    [LoggerMessage(108, LogLevel.Information, "Session {SessionId}: a subagent's session of run {RootId}, recorded for owner {OwnerId}")]
    public static partial void DescendantRecorded(ILogger logger, string sessionId, string rootId, string ownerId);
}
