
namespace OpencodeGateway.Auth;

/// <summary>Log lines of authentication.</summary>
internal static partial class AuthenticationLog
{
    [LoggerMessage(103, LogLevel.Warning, "Gateway:Auth:DevMode is ON: any request with an X-Debug-User header is trusted as that user. Never enable this outside development.")]
    public static partial void DevModeOn(ILogger logger);

    [LoggerMessage(104, LogLevel.Information, "Authentication failed for {Path}: {Reason}")]
    public static partial void AuthenticationFailed(ILogger logger, string path, string reason);
}
