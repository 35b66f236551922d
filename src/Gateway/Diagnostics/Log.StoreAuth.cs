using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Diagnostics;

/// <summary>Log lines of the session store, the catalog and authentication (event ids 100–199).</summary>
internal static partial class Log
{
    [LoggerMessage(100, LogLevel.Information, "Session store ({Provider}) ready: applied {Count} migration(s) [{Versions}]")]
    public static partial void StoreMigrated(ILogger logger, string provider, int count, string versions);

    [LoggerMessage(101, LogLevel.Warning, "Session {SessionId}: the record could not be written, deleting the upstream session again")]
    public static partial void CreateRolledBack(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(102, LogLevel.Error, "Session {SessionId}: the record could not be written AND the upstream session could not be deleted; it is orphaned on upstream {Upstream}")]
    public static partial void CreateOrphaned(ILogger logger, string sessionId, string upstream, Exception exception);

    [LoggerMessage(105, LogLevel.Error, "Unexpected error in {Method} {Path}")]
    public static partial void ApiFailed(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(106, LogLevel.Information, "Session {SessionId}: adopted by admin {AdminId} for owner {OwnerId}")]
    public static partial void SessionAdopted(ILogger logger, string sessionId, string adminId, string ownerId);
}
