using System.Text.Json;
using System.Text.Json.Serialization;

namespace OpencodeGateway.Chat;

/// <summary>
/// The events of <c>/api/chat</c> streams (SSE <c>event:</c> names), for clients that do not speak SignalR. Every
/// event but <c>ping</c> carries an <c>id:</c> "<c>{epoch}-{seq}</c>": reconnect with it as <c>Last-Event-ID</c>.
/// </summary>
internal static class ChatEvents
{
    /// <summary>First event: which session the stream is about.</summary>
    public const string Session = "session";
    /// <summary>
    /// Text of a text or reasoning part: <c>text = text.slice(0, offset) + delta</c>. With <c>gaps</c> it restates the
    /// text (offset 0) and its gap marks.
    /// </summary>
    public const string Delta = "delta";
    /// <summary>The part's text is not continuous at <c>offset</c>: show a mark there.</summary>
    public const string Gap = "gap";
    /// <summary>A tool call's state.</summary>
    public const string Tool = "tool";
    /// <summary>
    /// A permission request waiting for a reply, of the session or of a descendant (<c>childSessionId</c>): answer it with
    /// <c>POST /api/sessions/{sessionId}/permissions/{requestId}</c>.
    /// </summary>
    public const string Permission = "permission";
    /// <summary>A permission request was answered (by any client).</summary>
    public const string PermissionReplied = "permission-replied";
    /// <summary>
    /// A question waiting for an answer, of the session or of a descendant (<c>childSessionId</c>): answer it with
    /// <c>POST /api/sessions/{sessionId}/questions/{requestId}/reply</c> or dismiss it with <c>…/reject</c>.
    /// </summary>
    public const string Question = "question";
    /// <summary>A question was answered (by any client).</summary>
    public const string QuestionReplied = "question-replied";
    /// <summary>A question was dismissed (by any client): its tool call ends with an error.</summary>
    public const string QuestionRejected = "question-rejected";
    public const string Error = "error";
    /// <summary>The session went idle: the answer is complete. The stream ends.</summary>
    public const string Done = "done";
    /// <summary>Keep-alive, without id.</summary>
    public const string Ping = "ping";
}

internal sealed record ChatSessionData(string SessionId, string Upstream);

internal sealed record ChatDeltaData(string SessionId, string MessageId, string PartId, string Type, int Offset, string Delta,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<int>? Gaps = null);

internal sealed record ChatGapData(string SessionId, string MessageId, string PartId, string Type, int Offset);

internal sealed record ChatToolData(string SessionId, string MessageId, string PartId, string? Tool, string? CallId, string? Status,
    string? Title, JsonElement? Input, string? Output, string? Error);

/// <param name="Request">opencode's request: <c>{id, sessionID, permission, patterns, metadata, always, tool?}</c>.</param>
/// <param name="ChildSessionId">The descendant session (a subagent's) that asked; absent for the session's own.</param>
internal sealed record ChatPermissionData(string SessionId, string RequestId, JsonElement Request,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ChildSessionId);

/// <param name="Reply"><c>once</c>, <c>always</c> or <c>reject</c>.</param>
internal sealed record ChatPermissionRepliedData(string SessionId, string RequestId, string? Reply,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ChildSessionId);

/// <param name="Request">opencode's request: <c>{id, sessionID, questions: [{question, header, options: [{label, description}], multiple?}], tool?}</c>.</param>
internal sealed record ChatQuestionData(string SessionId, string RequestId, JsonElement Request,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ChildSessionId);

/// <param name="Answers">One array of chosen labels per question.</param>
internal sealed record ChatQuestionRepliedData(string SessionId, string RequestId, JsonElement? Answers,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ChildSessionId);

internal sealed record ChatQuestionRejectedData(string SessionId, string RequestId,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ChildSessionId);

internal sealed record ChatErrorData(string SessionId, string Code, string Message);

internal sealed record ChatDoneData(string SessionId);

/// <summary>Body of <c>POST /api/chat</c>.</summary>
public sealed record ChatRequest(string? Message, string? SessionId);
