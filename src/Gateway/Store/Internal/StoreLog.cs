
namespace OpencodeGateway.Store.Internal;

/// <summary>Log lines of the session store.</summary>
internal static partial class StoreLog
{
    [LoggerMessage(100, LogLevel.Information, "Session store ({Provider}) ready: applied {Count} migration(s) [{Versions}]")]
    public static partial void StoreMigrated(ILogger logger, string provider, int count, string versions);
}
