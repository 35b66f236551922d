using System.Text.Json;
using System.Text.Json.Serialization;

namespace OpencodeGateway.Contracts;

/// <summary>
/// One event of one session, as the gateway sends it to clients. The envelope is flat: <see cref="Type"/>
/// says which of the optional members are set (see <see cref="SessionEventTypes"/>).
/// Per session, <see cref="Seq"/> grows by one for every event within an <see cref="Epoch"/>.
/// </summary>
public sealed record SessionEvent
{
    public required string Upstream { get; init; }
    public required string SessionId { get; init; }
    /// <summary>Changes whenever the gateway lost continuity for this session; a client seeing a new epoch takes a snapshot.</summary>
    public required long Epoch { get; init; }
    /// <summary>1, 2, 3… within an epoch, without gaps.</summary>
    public required long Seq { get; init; }
    public required string Type { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? MessageId { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? PartId { get; init; }
    /// <summary><c>part.delta</c>, <c>part.gap</c>: the part field (opencode streams <c>text</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Field { get; init; }
    /// <summary><c>part.delta</c>: the field's length in UTF-16 code units before this delta; <c>part.gap</c>: where the gap is.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Offset { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Delta { get; init; }
    /// <summary>
    /// <c>part.delta</c>, <c>part.gap</c>, and <c>part.updated</c> whose <c>part</c> has <c>text</c>: the part field's
    /// handle, a small number the session gives the field when it first sees it (the same on every node). Compact
    /// connections receive that field's deltas as <see cref="ISessionClient.D"/> naming only the handle.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Handle { get; init; }
    /// <summary><c>part.updated</c>: opencode's part object. When it has no <c>text</c> member the text is unchanged.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Part { get; init; }
    /// <summary><c>message.updated</c>: opencode's message info; <c>session.updated</c>: opencode's session info.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Info { get; init; }
    /// <summary><c>status</c>: <c>{"type":"idle"|"busy"|"retry",…}</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Status { get; init; }
    /// <summary><c>error</c>: opencode's error object (<c>{name, data:{message,…}}</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Error { get; init; }
    /// <summary><c>permission.asked</c>: the request (<c>{id, permission, patterns, metadata, always, tool}</c>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Permission { get; init; }
    /// <summary><c>permission.replied</c>: the request id.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? RequestId { get; init; }
    /// <summary><c>permission.replied</c>: <c>once</c>, <c>always</c> or <c>reject</c>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Reply { get; init; }
    /// <summary><c>todo.updated</c>: the session's todo list.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Todos { get; init; }
}

/// <summary>The values of <see cref="SessionEvent.Type"/>.</summary>
public static class SessionEventTypes
{
    /// <summary>A part was created or changed: replace it with <c>part</c> (keep your text if <c>part</c> has none).</summary>
    public const string PartUpdated = "part.updated";
    /// <summary>Append <c>delta</c> to the part's <c>field</c> at position <c>offset</c>.</summary>
    public const string PartDelta = "part.delta";
    /// <summary>
    /// The part's <c>field</c> stops being continuous at <c>offset</c>: the text before it is what opencode streamed,
    /// what follows came after text the gateway never received. Record the gap (show a mark there) until a
    /// <c>part.updated</c> with the field restates the text.
    /// </summary>
    public const string PartGap = "part.gap";
    public const string PartRemoved = "part.removed";
    public const string MessageUpdated = "message.updated";
    public const string MessageRemoved = "message.removed";
    /// <summary>Busy / idle / retry. Sent only when the status changes.</summary>
    public const string Status = "status";
    public const string Error = "error";
    public const string PermissionAsked = "permission.asked";
    public const string PermissionReplied = "permission.replied";
    public const string TodoUpdated = "todo.updated";
    /// <summary>The session's info changed (title, cost, …).</summary>
    public const string SessionUpdated = "session.updated";
    public const string SessionDeleted = "session.deleted";
    /// <summary>
    /// The first event of every epoch that follows a loss of continuity. The gateway pushes a snapshot of the new
    /// epoch before anything else of it, so a client normally never sees this event; one that does has an event of
    /// another epoch, and rejoins without <c>since</c> (the client rules need nothing more).
    /// </summary>
    public const string EpochStarted = "epoch.started";
}
