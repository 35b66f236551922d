using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Api;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// <c>/api/ai-sdk/chat</c>: the AI SDK's chat transport protocol, so that <c>useChat</c> with
/// <c>new DefaultChatTransport({ api: '…/api/ai-sdk/chat', headers })</c> and <c>resume: true</c> works unchanged.
/// <list type="bullet">
/// <item><c>POST</c> <c>{id, messages, trigger}</c>: prompts the chat's session with the last (user) message, text and
/// file parts, creating the session for a new chat id, and streams the answer; a last message that is the answer
/// itself (after <c>addToolApprovalResponse</c> or <c>addToolOutput</c>) sends its approvals and answers to opencode
/// and continues it.</item>
/// <item><c>GET {id}/stream</c>: the answer in progress, restated from its start then live; 204 when none.</item>
/// <item><c>GET {id}/messages[?before=]</c>: the chat's history as <c>UIMessage[]</c>, newest first page, older pages
/// by the <c>x-opencode-earlier</c> cursor.</item>
/// <item><c>POST {id}/permissions/{requestId}</c> <c>{reply, message?}</c>: answers a permission request.</item>
/// <item><c>POST {id}/questions/{requestId}/reply</c> <c>{answers}</c> and <c>…/reject</c>: answers or dismisses a question.</item>
/// </list>
/// Authenticated like the rest of <c>/api</c>; errors before a stream starts are problem details.
/// </summary>
internal static partial class AiSdkEndpoints
{
    /// <summary>
    /// What a POST may carry besides a prompt of one attachment at its limit: the transport sends the whole conversation
    /// with every message (send only the last one with <c>prepareSendMessagesRequest</c>: the gateway reads nothing else).
    /// </summary>
    public const long ConversationBytes = 4 * 1024 * 1024;

    /// <summary>Largest body of the routes that answer a request.</summary>
    public const long MaxReplyBodyBytes = 64 * 1024;

    /// <summary>The response header that carries the cursor of the messages before a history page.</summary>
    public const string EarlierHeader = "x-opencode-earlier";

    public static IEndpointRouteBuilder MapAiSdkChat(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/ai-sdk/chat").RequireAuthorization().AddEndpointFilter(SessionsApi.ProblemFilter);
        group.MapPost("", PostAsync);
        group.MapGet("/{chatId}/stream", ResumeAsync);
        group.MapGet("/{chatId}/messages", MessagesAsync);
        group.MapPost("/{chatId}/permissions/{requestId}", ReplyPermissionAsync);
        group.MapPost("/{chatId}/questions/{requestId}/reply", ReplyQuestionAsync);
        group.MapPost("/{chatId}/questions/{requestId}/reject", RejectQuestionAsync);
        return endpoints;
    }

    /// <summary>Largest POST body: a prompt of one attachment at the limit (as the hub allows) and the conversation around it.</summary>
    public static long MaxSendBodyBytes(PromptOptions prompts) => prompts.LargestPromptMessageBytes + ConversationBytes;

    private static async Task<IResult> PostAsync(HttpContext context, AiSdkChats chats, SessionService sessions, AiSdkChatStreams streams,
        IOptions<PromptOptions> prompts)
    {
        var ct = context.RequestAborted;
        var user = GatewayUser.From(context.User);
        using var body = await ReadJsonAsync(context, MaxSendBodyBytes(prompts.Value));
        var send = ParseSend(body.RootElement);
        if (send.Continuation is { } continuation)
        {
            var (continued, continuedId) = await chats.FindAsync(user, send.ChatId, ct);
            await ContinueAsync(context, continued, continuedId, continuation, send.MessageField, sessions, streams);
            return Results.Empty;
        }

        var prompt = new PromptRequest(send.ChatId, Parts: send.Parts);
        Validate(sessions, prompt, send); // before a new chat's session is created
        var existing = await chats.FindExistingAsync(user, send.ChatId, ct);
        if (existing is null)
        {
            await sessions.AdmitNewSessionPromptAsync(user, ct); // a refused prompt creates nothing
        }

        var (client, sessionId) = existing ?? await chats.FindOrCreateAsync(user, send.ChatId, TitleOf(send.Parts), ct);
        var watch = await streams.SubscribeAsync(client, sessionId, ct);
        try
        {
            // A prompt would wait behind the run's requests, on a stream that would show nothing until they are
            // answered: the app answers them first (its copy of the answer, or the routes).
            var waiting = await streams.SnapshotAsync(watch, ct);
            if (waiting.Permissions.Count + waiting.Questions.Count > 0)
            {
                throw GatewayException.Invalid($"{send.MessageField}.role", "the chat's answer waits for the user: answer its approvals "
                    + "and questions (or dismiss them) before sending a new message.", GatewayErrorCodes.Conflict);
            }

            await sessions.PromptAsync(user, client, prompt with { SessionId = sessionId }, ct, admitted: existing is null);
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

    /// <summary>
    /// Sends the approvals and answers of the app's copy of the answer that opencode still waits for, then streams the
    /// answer on from that copy. A copy of another answer than the latest is refused (<c>conflict</c>): the app is behind.
    /// </summary>
    private static async Task ContinueAsync(HttpContext context, OpencodeClient client, string sessionId, ClientAnswer answer,
        string messageField, SessionService sessions, AiSdkChatStreams streams)
    {
        var ct = context.RequestAborted;
        await using var watch = await streams.SubscribeAsync(client, sessionId, ct);
        var snapshot = await streams.SnapshotAsync(watch, ct);
        var latest = await streams.LatestAnswerAsync(client, snapshot, ct);
        var latestId = latest.Count > 0 ? UiMessageMapper.String(latest[0].Info, "id") : null;
        if (latestId != answer.MessageId)
        {
            throw GatewayException.Invalid($"{messageField}.id", latestId is null
                ? "the chat has no answer to continue: load its messages again."
                : $"is not the chat's latest answer ('{latestId}'): load its messages again.", GatewayErrorCodes.Conflict);
        }

        var answered = await SendAnswersAsync(client, sessionId, answer, snapshot, sessions, ct);
        await streams.WriteAsync(context, watch, snapshot, new AiSdkChatStreams.Continuation(answer, latest, answered));
    }

    /// <summary>
    /// The approvals (<c>approval-responded</c>: once or reject, the denial's reason as opencode's message) and question
    /// answers (<c>output: {answers}</c>, or <c>output-error</c> to dismiss) of requests opencode lists as pending. One
    /// answered meanwhile by anyone is left as it is.
    /// </summary>
    private static async Task<Dictionary<string, (string Status, JsonElement? Answers)>> SendAnswersAsync(OpencodeClient client,
        string sessionId, ClientAnswer answer, SessionSnapshot snapshot, SessionService sessions, CancellationToken ct)
    {
        var answered = new Dictionary<string, (string Status, JsonElement? Answers)>(StringComparer.Ordinal);
        var pending = snapshot.Permissions.Select(p => UiMessageMapper.String(p, "id")).ToHashSet(StringComparer.Ordinal);
        foreach (var approval in answer.Approvals.Values)
        {
            if (approval.Approved is not { } approved || !pending.Contains(approval.Id))
            {
                continue;
            }

            var reply = approved ? "once" : "reject";
            try
            {
                await sessions.ReplyPermissionAsync(client, new PermissionReplyRequest(sessionId, approval.Id, reply, approved ? null : approval.Reason), ct);
                answered[approval.Id] = (reply, null);
            }
            catch (GatewayException e) when (e.Code == GatewayErrorCodes.PermissionNotFound)
            {
                // answered meanwhile
            }
        }

        foreach (var result in answer.Results.Values)
        {
            var question = snapshot.Questions.FirstOrDefault(q => UiMessageMapper.String(q, "id") is { } id
                && (id == result.RequestId || (q.TryGetProperty("tool", out var tool) && UiMessageMapper.String(tool, "callID") == result.ToolCallId)));
            if (UiMessageMapper.String(question, "id") is not { } requestId)
            {
                continue;
            }

            try
            {
                if (result.ErrorText is not null)
                {
                    await sessions.RejectQuestionAsync(client, new QuestionRejectRequest(sessionId, requestId), ct);
                    answered[requestId] = ("rejected", null);
                }
                else
                {
                    var answers = ParseAnswers(result.Output is { ValueKind: JsonValueKind.Object } output
                        && output.TryGetProperty("answers", out var given) ? given : default, $"{result.Field}.output.answers");
                    await sessions.ReplyQuestionAsync(client, new QuestionReplyRequest(sessionId, requestId, answers), ct);
                    answered[requestId] = ("replied", JsonSerializer.SerializeToElement(answers));
                }
            }
            catch (GatewayException e) when (e.Code == GatewayErrorCodes.QuestionNotFound)
            {
                // answered meanwhile
            }
            catch (GatewayException e) when (e.Errors is { Count: 1 } errors && errors.Keys.Single().StartsWith("answers", StringComparison.Ordinal))
            {
                // The answers' own checks name them from the output the app set.
                throw GatewayException.Invalid($"{result.Field}.output.{errors.Keys.Single()}", errors.Values.Single()[0], e.Code);
            }
        }

        return answered;
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

    /// <summary>
    /// The newest messages (a snapshot's window, pending approvals and questions included), or with <c>before</c> the
    /// page before that cursor; either way widened to whole answers. The cursor of what precedes them is the
    /// <see cref="EarlierHeader"/> header (absent at the session's start).
    /// </summary>
    private static async Task<IResult> MessagesAsync(string chatId, string? before, string? limit, HttpContext context, AiSdkChats chats,
        AiSdkChatStreams streams, SessionService sessions)
    {
        var ct = context.RequestAborted;
        var pageLimit = limit is null ? (int?)null
            : int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed
            : throw GatewayException.Invalid("limit", "must be a number of messages (1-100).");
        var (client, sessionId) = await chats.FindAsync(GatewayUser.From(context.User), chatId, ct);
        List<Dictionary<string, object?>> history;
        EarlierMessages? earlier;
        if (string.IsNullOrEmpty(before))
        {
            await using var watch = await streams.SubscribeAsync(client, sessionId, ct);
            var snapshot = await streams.SnapshotAsync(watch, ct);
            (var messages, earlier) = await streams.WholeAnswersAsync(client, sessionId, snapshot.Messages, snapshot.Earlier, ct);
            history = UiMessageHistory.From(messages, snapshot);
        }
        else
        {
            var page = await sessions.LoadEarlierAsync(client, sessionId, before, pageLimit, ct);
            (var messages, earlier) = await streams.WholeAnswersAsync(client, sessionId, page.Messages, page.Earlier, ct);
            history = UiMessageHistory.From(messages, pending: null);
        }

        if (earlier is not null)
        {
            context.Response.Headers[EarlierHeader] = earlier.Cursor;
        }

        return Results.Json(history, UiMessageChunk.JsonOptions);
    }

    private static async Task<IResult> ReplyPermissionAsync(string chatId, string requestId, HttpContext context, AiSdkChats chats,
        SessionService sessions, AiSdkChatStreams streams)
    {
        using var body = await ReadJsonAsync(context, MaxReplyBodyBytes);
        var root = body.RootElement;
        var reply = UiMessageMapper.String(root, "reply") ?? throw GatewayException.Invalid("reply", "must be 'once', 'always' or 'reject'.");
        return await AnswerAsync(context, chatId, requestId, chats, streams, (client, sessionId, ct) =>
            sessions.ReplyPermissionAsync(client, new PermissionReplyRequest(sessionId, requestId, reply, UiMessageMapper.String(root, "message")), ct));
    }

    private static async Task<IResult> ReplyQuestionAsync(string chatId, string requestId, HttpContext context, AiSdkChats chats,
        SessionService sessions, AiSdkChatStreams streams)
    {
        using var body = await ReadJsonAsync(context, MaxReplyBodyBytes);
        var answers = ParseAnswers(body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("answers", out var a)
            ? a : default, "answers");
        return await AnswerAsync(context, chatId, requestId, chats, streams, (client, sessionId, ct) =>
            sessions.ReplyQuestionAsync(client, new QuestionReplyRequest(sessionId, requestId, answers), ct));
    }

    private static Task<IResult> RejectQuestionAsync(string chatId, string requestId, HttpContext context, AiSdkChats chats,
        SessionService sessions, AiSdkChatStreams streams) =>
        AnswerAsync(context, chatId, requestId, chats, streams, (client, sessionId, ct) =>
            sessions.RejectQuestionAsync(client, new QuestionRejectRequest(sessionId, requestId), ct));

    /// <summary>
    /// Answers a request of the chat's run, and answers 204 once the session's events show it answered: the app's
    /// <c>resumeStream()</c> right after then goes on with the answer instead of showing the request again.
    /// </summary>
    private static async Task<IResult> AnswerAsync(HttpContext context, string chatId, string requestId, AiSdkChats chats,
        AiSdkChatStreams streams, Func<OpencodeClient, string, CancellationToken, Task> answer)
    {
        var ct = context.RequestAborted;
        var (client, sessionId) = await chats.FindAsync(GatewayUser.From(context.User), chatId, ct);
        await using var watch = await streams.SubscribeAsync(client, sessionId, ct);
        await answer(client, sessionId, ct);
        await streams.WaitUntilAnsweredAsync(watch, requestId, ct);
        return Results.NoContent();
    }

    /// <summary>A question's answers: one array of strings (chosen labels or typed text) per question.</summary>
    internal static IReadOnlyList<IReadOnlyList<string>> ParseAnswers(JsonElement answers, string field)
    {
        if (answers.ValueKind != JsonValueKind.Array
            || !answers.EnumerateArray().All(a => a.ValueKind == JsonValueKind.Array && a.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String)))
        {
            throw GatewayException.Invalid(field, "must be one array of strings (the chosen labels) per question, e.g. [[\"Red\"]].");
        }

        return [.. answers.EnumerateArray().Select(a => (IReadOnlyList<string>)[.. a.EnumerateArray().Select(s => s.GetString()!)])];
    }

    /// <summary>
    /// A transport request: the chat id and either a prompt (the last message is the user's: its text and file parts)
    /// or a continuation (the last message is the answer the app shows, with its approvals and answers). Only
    /// <c>submit-message</c> is supported (opencode has no regenerate).
    /// </summary>
    internal static ChatSend ParseSend(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid("body", "must be a JSON object {id, messages, trigger}.");
        }

        var chatId = UiMessageMapper.String(body, "id");
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
        var role = last.ValueKind == JsonValueKind.Object ? UiMessageMapper.String(last, "role") : null;
        if (role == "assistant")
        {
            return new ChatSend(chatId!, [], [], at, ClientAnswer.Parse(last, at));
        }

        if (role != "user")
        {
            throw GatewayException.Invalid($"{at}.role", "the last message must be the user's (a prompt) or the answer it continues.");
        }

        var parts = new List<PromptPart>();
        var fields = new List<string>();
        if (last.TryGetProperty("parts", out var uiParts) && uiParts.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var part in uiParts.EnumerateArray())
            {
                var field = $"{at}.parts[{i++}]";
                switch (UiMessageMapper.String(part, "type"))
                {
                    case "text":
                        if (UiMessageMapper.String(part, "text") is { Length: > 0 } text)
                        {
                            parts.Add(new PromptPart("text", text));
                            fields.Add(field);
                        }

                        break;
                    case "file":
                        parts.Add(new PromptPart("file")
                        {
                            Mime = UiMessageMapper.String(part, "mediaType"),
                            Url = UiMessageMapper.String(part, "url"),
                            Filename = UiMessageMapper.String(part, "filename"),
                        });
                        fields.Add(field);
                        break;
                    case var type:
                        throw GatewayException.Invalid($"{field}.type", $"'{type}' cannot be sent: only text and file parts.");
                }
            }
        }

        return parts.Count > 0 ? new ChatSend(chatId!, parts, fields, at, Continuation: null)
            : throw GatewayException.Invalid($"{at}.parts", "needs a non-empty text part or a file.");
    }

    /// <summary>Checks the prompt as the hub would, naming the UI message's fields in errors.</summary>
    private static void Validate(SessionService sessions, PromptRequest prompt, ChatSend send)
    {
        try
        {
            sessions.ValidatePrompt(prompt);
        }
        catch (GatewayException e) when (e.Errors is { Count: 1 } errors && PromptField().Match(errors.Keys.Single()) is { Success: true } match)
        {
            var part = match.Groups["index"].Success ? send.PartFields[int.Parse(match.Groups["index"].Value, CultureInfo.InvariantCulture)]
                : $"{send.MessageField}.parts";
            var member = match.Groups["member"].Value == "mime" ? "mediaType" : match.Groups["member"].Value;
            throw GatewayException.Invalid(member.Length == 0 ? part : $"{part}.{member}", errors.Values.Single()[0], e.Code);
        }
    }

    [GeneratedRegex(@"^parts(\[(?<index>\d+)\](\.(?<member>\w+))?)?$")]
    private static partial Regex PromptField();

    /// <summary>A new chat's title: its first text (60 characters at most), else its first file's name.</summary>
    private static string TitleOf(IReadOnlyList<PromptPart> parts) =>
        parts.FirstOrDefault(p => p.Type == "text")?.Text is { } text ? text.Length <= 60 ? text : text[..60]
        : parts.Select(p => p.Filename).FirstOrDefault(f => f is not null) ?? "Attachment";

    /// <summary>The JSON body, within <paramref name="maxBytes"/> (<see cref="JsonBody"/>).</summary>
    private static async Task<JsonDocument> ReadJsonAsync(HttpContext context, long maxBytes) =>
        (await JsonBody.ReadAsync(context, maxBytes, allowEmpty: false, maxDepth: 64, "application/json"))!;
}

/// <summary>
/// A transport request, read: a prompt (<see cref="Parts"/>, each from the UI part at the same index of
/// <see cref="PartFields"/>) or a <see cref="Continuation"/> of the answer. <see cref="MessageField"/>: the last
/// message's path, for errors.
/// </summary>
internal sealed record ChatSend(string ChatId, IReadOnlyList<PromptPart> Parts, IReadOnlyList<string> PartFields, string MessageField,
    ClientAnswer? Continuation);
