
namespace OpencodeGateway.Hubs.Internal;

/// <summary>Log lines of the session hub.</summary>
internal static partial class HubsLog
{
    [LoggerMessage(10, LogLevel.Error, "Unexpected error in hub method {Method}")]
    public static partial void HubMethodFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(16, LogLevel.Warning, "Connection {ConnectionId} of user {UserId} closed: it sent a message over Gateway:Hub:MaximumReceiveMessageSize ({Reason})")]
    public static partial void MessageTooLarge(ILogger logger, string connectionId, string? userId, string reason);

    [LoggerMessage(23, LogLevel.Warning, "Connection {ConnectionId} of user {UserId} closed: it sent a message nested deeper than the hub protocol reads ({Reason})")]
    public static partial void MessageTooDeep(ILogger logger, string connectionId, string? userId, string reason);

    [LoggerMessage(19, LogLevel.Warning, "Hub method {Method}: a dependency did not answer ({ExceptionType}: {Reason}); the caller was told service_unavailable")]
    public static partial void DependencyUnavailable(ILogger logger, string method, string exceptionType, string reason);

    [LoggerMessage(20, LogLevel.Warning, "Session {SessionId}: its list change ({Kind}) could not be sent")]
    public static partial void SessionListNotifyFailed(ILogger logger, string sessionId, string kind, Exception exception);

    [LoggerMessage(21, LogLevel.Warning, "Connection {ConnectionId} of user {UserId} will not hear session list changes of its workspaces: joining their groups failed")]
    public static partial void ListGroupsUnavailable(ILogger logger, string connectionId, string userId, Exception exception);
}
