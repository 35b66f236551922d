
namespace OpencodeGateway.AiSdk;

/// <summary>Log lines of <c>/api/ai-sdk/chat</c>.</summary>
internal static partial class AiSdkLog
{
    [LoggerMessage(1101, LogLevel.Information, "AI SDK chat {ChatId}: created by a concurrent request; session {SessionId} created for it is archived")]
    public static partial void ChatRaceLost(ILogger logger, string chatId, string sessionId);

    [LoggerMessage(1102, LogLevel.Warning, "AI SDK chat: could not archive the surplus session {SessionId}")]
    public static partial void ChatRaceCleanupFailed(ILogger logger, string sessionId, Exception exception);

    [LoggerMessage(1103, LogLevel.Information, "AI SDK stream of session {SessionId} ended with {Code}: {Message}")]
    public static partial void StreamFailed(ILogger logger, string sessionId, string code, string message);

    [LoggerMessage(1104, LogLevel.Warning, "AI SDK chat: the answer to {RequestId} did not show in session {SessionId}'s events in time; a resume may still show it pending")]
    public static partial void AnswerNotShown(ILogger logger, string sessionId, string requestId);
}
