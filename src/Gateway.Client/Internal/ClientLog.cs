using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Client.Internal;

internal static partial class ClientLog
{
    [LoggerMessage(1, LogLevel.Information, "Connected to the gateway; rejoining {Sessions} watched sessions.")]
    public static partial void Connected(ILogger logger, int sessions);

    [LoggerMessage(2, LogLevel.Warning, "The gateway connection dropped; reconnecting.")]
    public static partial void Reconnecting(ILogger logger, Exception? error);

    [LoggerMessage(3, LogLevel.Warning, "The gateway connection closed; connecting again (attempt {Attempt}).")]
    public static partial void ConnectingAgain(ILogger logger, int attempt, Exception? error);

    [LoggerMessage(4, LogLevel.Debug, "Session {SessionId}: rejoining ({Reason}, since {Since}).")]
    public static partial void Rejoining(ILogger logger, string sessionId, RejoinReason reason, string since);

    [LoggerMessage(5, LogLevel.Warning, "Session {SessionId}: join failed ({Code}); trying again in {Delay}.")]
    public static partial void JoinRetry(ILogger logger, string sessionId, string code, TimeSpan delay, Exception error);

    [LoggerMessage(6, LogLevel.Warning, "Session {SessionId}: join failed for good ({Code}).")]
    public static partial void JoinFailed(ILogger logger, string sessionId, string code, Exception error);

    [LoggerMessage(7, LogLevel.Error, "A handler of {Notification} threw; the client goes on.")]
    public static partial void HandlerFailed(ILogger logger, string notification, Exception error);

    [LoggerMessage(8, LogLevel.Debug, "Leaving session {SessionId} failed ({Code}).")]
    public static partial void LeaveFailed(ILogger logger, string sessionId, string code);
}
