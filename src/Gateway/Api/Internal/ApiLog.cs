
namespace OpencodeGateway.Api.Internal;

/// <summary>Log lines of the HTTP API.</summary>
internal static partial class ApiLog
{
    [LoggerMessage(105, LogLevel.Error, "Unexpected error in {Method} {Path}")]
    public static partial void ApiFailed(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(107, LogLevel.Warning, "{Method} {Path}: a dependency did not answer ({ExceptionType}: {Reason}); answered 503 service_unavailable")]
    public static partial void DependencyUnavailable(ILogger logger, string method, string path, string exceptionType, string reason);
}
