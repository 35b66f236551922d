namespace OpencodeGateway.Store;

/// <summary>One row of <c>ai_sdk_chats</c>: a user's <c>/api/ai-sdk/chat</c> chat id and the session answering it.</summary>
internal sealed record ChatRecord(string OwnerId, string ChatId, string SessionId, DateTimeOffset CreatedAt);
