using System.Text.RegularExpressions;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions;
using OpencodeGateway.Store;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// Which session answers a <c>useChat</c> chat id: the caller's own mapping in the store (<c>ai_sdk_chats</c>), or,
/// for an id that is a session id (<c>ses_…</c>), that session. Either must be visible to the caller; anything else
/// is <c>session_not_found</c>, exactly like a chat that does not exist.
/// </summary>
internal sealed partial class AiSdkChats(ISessionStore store, SessionCatalog catalog, TimeProvider time, ILogger<AiSdkChats> logger)
{
    public const int MaxChatIdLength = 128;

    /// <summary>The chat's session, authorised for <paramref name="user"/>.</summary>
    public async Task<(OpencodeClient Client, string SessionId)> FindAsync(GatewayUser user, string chatId, CancellationToken ct)
    {
        Validate(chatId);
        var chat = await store.GetChatAsync(user.UserId, chatId, ct);
        var sessionId = chat?.SessionId ?? (SessionIds.Session().IsMatch(chatId) ? chatId : throw NotFound(chatId));
        try
        {
            var (client, _) = await catalog.AuthorizeAsync(user, sessionId, upstream: null, ct);
            return (client, sessionId);
        }
        catch (GatewayException e) when (e.Code == GatewayErrorCodes.SessionNotFound)
        {
            throw NotFound(chatId);
        }
    }

    /// <summary>The chat's session, authorised for <paramref name="user"/>; null for a new chat id.</summary>
    public async Task<(OpencodeClient Client, string SessionId)?> FindExistingAsync(GatewayUser user, string chatId, CancellationToken ct)
    {
        Validate(chatId);
        return SessionIds.Session().IsMatch(chatId) || await store.GetChatAsync(user.UserId, chatId, ct) is not null
            ? await FindAsync(user, chatId, ct)
            : null;
    }

    /// <summary>The chat's session; a new chat id gets a new session owned by the caller, titled <paramref name="title"/>.</summary>
    public async Task<(OpencodeClient Client, string SessionId)> FindOrCreateAsync(GatewayUser user, string chatId, string title,
        CancellationToken ct)
    {
        if (await FindExistingAsync(user, chatId, ct) is { } existing)
        {
            return existing;
        }

        var (record, _) = await catalog.CreateAsync(user, new CreateSessionRequest(title), ct);
        if (!await store.TryInsertChatAsync(new ChatRecord(user.UserId, chatId, record.SessionId, SessionRecord.Truncate(time.GetUtcNow())), ct))
        {
            // Another request of this user created the chat first: its session answers; ours goes away.
            AiSdkLog.ChatRaceLost(logger, chatId, record.SessionId);
            try
            {
                await catalog.ArchiveAsync(user, record.SessionId, deleteUpstream: true, CancellationToken.None);
            }
            catch (Exception e) when (e is GatewayException or System.Data.Common.DbException)
            {
                AiSdkLog.ChatRaceCleanupFailed(logger, record.SessionId, e);
            }
        }

        return await FindAsync(user, chatId, ct);
    }

    public static void Validate(string? chatId)
    {
        if (string.IsNullOrEmpty(chatId) || chatId.Length > MaxChatIdLength || !ChatId().IsMatch(chatId) || chatId is "." or "..")
        {
            throw GatewayException.Invalid("id", $"must be 1 to {MaxChatIdLength} letters, digits, '-', '_', '.' or ':'.");
        }
    }

    private static GatewayException NotFound(string chatId) =>
        new(GatewayErrorCodes.SessionNotFound, $"Chat '{chatId}' was not found.");

    [GeneratedRegex("^[A-Za-z0-9_.:-]+$")]
    private static partial Regex ChatId();
}
