using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Api.Internal;

/// <summary>Log lines of the HTTP API.</summary>
internal static partial class ApiLog
{
    [LoggerMessage(105, LogLevel.Error, "Unexpected error in {Method} {Path}")]
    public static partial void ApiFailed(ILogger logger, string method, string path, Exception exception);
}
