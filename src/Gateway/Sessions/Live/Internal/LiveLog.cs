using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Sessions.Live.Internal;

/// <summary>Log lines of the live session state.</summary>
internal static partial class LiveLog
{
    [LoggerMessage(11, LogLevel.Debug, "Evicted {Count} idle sessions")]
    public static partial void EvictedIdle(ILogger logger, int count);
}
