using System.Text.Json;
using OpencodeGateway.Api;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// <c>/api/ai-sdk/chat</c>: the AI SDK's chat transport protocol, so that <c>useChat</c> with
/// <c>new DefaultChatTransport({ api: '…/api/ai-sdk/chat', headers })</c> and <c>resume: true</c> works unchanged.
/// <list type="bullet">
/// <item><c>POST</c> <c>{id, messages, trigger}</c>: prompts the chat's session with the last (user) message, creating
/// the session for a new chat id, and streams the answer.</item>
/// <item><c>GET {id}/stream</c>: the answer in progress, restated from its start then live; 204 when none.</item>
/// <item><c>GET {id}/messages</c>: the chat's history as <c>UIMessage[]</c>.</item>
/// <item><c>POST {id}/permissions/{requestId}</c> <c>{reply, message?}</c>: answers a permission request.</item>
/// </list>
/// Authenticated like the rest of <c>/api</c>; errors before a stream starts are problem details.
/// </summary>
internal static class AiSdkEndpoints
{
    /// <summary>Largest body accepted: the transport sends the whole conversation with every message.</summary>
    public const int MaxBodyBytes = 4 * 1024 * 1024;

    public static IEndpointRouteBuilder MapAiSdkChat(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/ai-sdk/chat").RequireAuthorization().AddEndpointFilter(SessionsApi.ProblemFilter);
        group.MapPost("", PostAsync);
        group.MapGet("/{chatId}/stream", ResumeAsync);
        group.MapGet("/{chatId}/messages", MessagesAsync);
        group.MapPost("/{chatId}/permissions/{requestId}", ReplyPermissionAsync);
        return endpoints;
    }

    private static async Task<IResult> PostAsync(HttpContext context, AiSdkChats chats, SessionService sessions, AiSdkChatStreams streams)
    {
        var ct = context.RequestAborted;
        var user = GatewayUser.From(context.User);
        using var body = await ReadJsonAsync(context);
        var (chatId, parts) = ParseSend(body.RootElement);
        var text = parts[0].Text!;
        var (client, sessionId) = await chats.FindOrCreateAsync(user, chatId, text.Length <= 60 ? text : text[..60], ct);
        var watch = await streams.SubscribeAsync(client, sessionId, ct);
        try
        {
            await sessions.PromptAsync(client, new PromptRequest(sessionId, Parts: parts), ct);
        }
        catch
        {
            await watch.DisposeAsync();
            throw;
        }

        await using (watch)
        {
            await streams.WriteAsync(context, watch, restateFrom: null);
        }

        return Results.Empty;
    }

    private static async Task<IResult> ResumeAsync(string chatId, HttpContext context, AiSdkChats chats, AiSdkChatStreams streams)
    {
        var (client, sessionId) = await chats.FindAsync(GatewayUser.From(context.User), chatId, context.RequestAborted);
        await using var watch = await streams.SubscribeAsync(client, sessionId, context.RequestAborted);
        var snapshot = await streams.SnapshotAsync(watch, context.RequestAborted);
        if (!AiSdkChatStreams.IsAnswering(snapshot))
        {
            return Results.NoContent();
        }

        await streams.WriteAsync(context, watch, restateFrom: snapshot);
        return Results.Empty;
    }

    private static async Task<IResult> MessagesAsync(string chatId, HttpContext context, AiSdkChats chats, AiSdkChatStreams streams)
    {
        var (client, sessionId) = await chats.FindAsync(GatewayUser.From(context.User), chatId, context.RequestAborted);
        await using var watch = await streams.SubscribeAsync(client, sessionId, context.RequestAborted);
        var snapshot = await streams.SnapshotAsync(watch, context.RequestAborted);
        return Results.Json(UiMessageHistory.From(snapshot), UiMessageChunk.JsonOptions);
    }

    private static async Task<IResult> ReplyPermissionAsync(string chatId, string requestId, HttpContext context, AiSdkChats chats,
        SessionService sessions)
    {
        var (client, sessionId) = await chats.FindAsync(GatewayUser.From(context.User), chatId, context.RequestAborted);
        using var body = await ReadJsonAsync(context);
        var root = body.RootElement;
        var reply = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("reply", out var r) && r.ValueKind == JsonValueKind.String
            ? r.GetString()! : throw GatewayException.Invalid("reply", "must be 'once', 'always' or 'reject'.");
        var message = root.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        await sessions.ReplyPermissionAsync(client, new PermissionReplyRequest(sessionId, requestId, reply, message), context.RequestAborted);
        return Results.NoContent();
    }

    /// <summary>
    /// The chat id and the prompt from a transport request: the last message must be the user's, with text parts.
    /// Only <c>submit-message</c> is supported (opencode has no regenerate).
    /// </summary>
    internal static (string ChatId, List<PromptPart> Parts) ParseSend(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid("body", "must be a JSON object {id, messages, trigger}.");
        }

        var chatId = body.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
        AiSdkChats.Validate(chatId);
        if (body.TryGetProperty("trigger", out var trigger) && trigger.ValueKind == JsonValueKind.String && trigger.GetString() != "submit-message")
        {
            throw GatewayException.Invalid("trigger", $"'{trigger.GetString()}' is not supported: send a new message ('submit-message').");
        }

        if (!body.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            throw GatewayException.Invalid("messages", "must be a non-empty array of UI messages.");
        }

        var index = messages.GetArrayLength() - 1;
        var last = messages[index];
        var at = $"messages[{index}]";
        if (last.ValueKind != JsonValueKind.Object || UiMessageMapper.String(last, "role") != "user")
        {
            throw GatewayException.Invalid($"{at}.role", "the last message must be the user's.");
        }

        var parts = new List<PromptPart>();
        if (last.TryGetProperty("parts", out var uiParts) && uiParts.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var part in uiParts.EnumerateArray())
            {
                var type = UiMessageMapper.String(part, "type");
                if (type != "text")
                {
                    throw GatewayException.Invalid($"{at}.parts[{i}].type", $"'{type}' cannot be sent: only text parts.");
                }

                if (UiMessageMapper.String(part, "text") is { Length: > 0 } text)
                {
                    parts.Add(new PromptPart("text", text));
                }

                i++;
            }
        }

        return parts.Count > 0 ? (chatId!, parts) : throw GatewayException.Invalid($"{at}.parts", "needs at least one non-empty text part.");
    }

    private static async Task<JsonDocument> ReadJsonAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.ContentLength > MaxBodyBytes)
        {
            throw GatewayException.Invalid("body", $"is larger than {MaxBodyBytes} bytes.", GatewayErrorCodes.PayloadTooLarge);
        }

        var mediaType = request.ContentType?.Split(';')[0].Trim();
        if (!string.Equals(mediaType, "application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw GatewayException.Invalid("body", "Content-Type must be application/json.");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                throw GatewayException.Invalid("body", $"is larger than {MaxBodyBytes} bytes.", GatewayErrorCodes.PayloadTooLarge);
            }

            buffer.Write(chunk, 0, read);
        }

        try
        {
            return JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw GatewayException.Invalid("body", $"is not valid JSON ({e.Message}).");
        }
    }
}
