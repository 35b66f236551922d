using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Upstreams.Internal;

/// <summary>Log lines of the upstream registry (never a password).</summary>
internal static partial class UpstreamsLog
{
    [LoggerMessage(80, LogLevel.Information, "Upstream {Upstream} registered at {BaseUrl}")]
    public static partial void Registered(ILogger logger, string upstream, string baseUrl);

    [LoggerMessage(81, LogLevel.Information, "Upstream {Upstream} removed")]
    public static partial void Removed(ILogger logger, string upstream);

    [LoggerMessage(82, LogLevel.Information, "Registered upstreams changed: {Count} now ({Ids})")]
    public static partial void Changed(ILogger logger, int count, string ids);

    [LoggerMessage(83, LogLevel.Warning, "Could not read the registered upstreams from the store ({Reason}); keeping the {Count} known")]
    public static partial void RefreshFailed(ILogger logger, string reason, int count);

    [LoggerMessage(84, LogLevel.Error, "Registered upstream {Upstream} is left out: {Reason}")]
    public static partial void Unusable(ILogger logger, string upstream, string reason);
}
