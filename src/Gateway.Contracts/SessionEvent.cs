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
    /// <c>part.delta</c>, <c>part.gap</c>, <c>part.updated</c> whose <c>part</c> has <c>text</c> (the handle of
    /// <c>text</c>), and a <c>part.updated</c> that extends one streamed field of a tool part (the handle of
    /// <see cref="Field"/>): the part field's handle, a small number the session gives the field when it first sees it
    /// (the same on every node). Compact connections receive that field's deltas as <see cref="ISessionClient.D"/>
    /// naming only the handle.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Handle { get; init; }
    /// <summary>
    /// <c>part.updated</c>: opencode's part object. When it has no <c>text</c> member the text is unchanged; a member
    /// named in <see cref="Copies"/> that it lacks is the text of that handle.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Part { get; init; }
    /// <summary>
    /// <c>part.updated</c> of a tool part: the handles of its streamed fields (<see cref="StreamedFields"/>: field path →
    /// handle), introduced here for the deltas that follow.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyDictionary<string, int>? Handles { get; init; }
    /// <summary>
    /// <c>part.updated</c> of a tool part: streamed fields whose value is the text the client holds for a handle (field
    /// path → handle). Compact connections receive the part without them: set each one the part lacks to that handle's
    /// text (read before replacing the part). Full-form connections receive them inside the part too.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyDictionary<string, int>? Copies { get; init; }
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
    /// <summary>
    /// <c>question.asked</c>: opencode's request (<c>{id, sessionID, questions:[{question, header, options:[{label,
    /// description}], multiple?}], tool?}</c>); <c>question.replied</c>: <c>{id, sessionID, answers}</c> (one string
    /// array per question); <c>question.rejected</c>: <c>{id, sessionID}</c>.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public JsonElement? Question { get; init; }
    /// <summary>
    /// Set when the event happened in a descendant session (a subagent's session, any depth) and is delivered on this
    /// session's stream as one of its own (<c>permission.*</c>, <c>question.*</c>, <c>child.updated</c>): the
    /// descendant's id. The request inside still names the descendant as its <c>sessionID</c>; answer it with either id.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? ChildSessionId { get; init; }
    /// <summary><c>child.updated</c>: the descendant session as it is now.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public ChildSession? Child { get; init; }
}

/// <summary>The part fields the gateway streams as positioned deltas, by part type (field paths, dot-separated).</summary>
public static class StreamedFields
{
    /// <summary>Text and reasoning parts: their <c>text</c>.</summary>
    public const string Text = "text";

    /// <summary>Tool parts: the output a running tool streams (opencode re-sends it whole on each update).</summary>
    public const string ToolMetadataOutput = "state.metadata.output";

    /// <summary>Tool parts: the output of a completed tool (usually the streamed output again).</summary>
    public const string ToolOutput = "state.output";

    /// <summary>The streamed fields of a tool part, in the order they are looked at.</summary>
    public static IReadOnlyList<string> Tool { get; } = [ToolMetadataOutput, ToolOutput];
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
    /// <summary>A question of opencode's <c>question</c> tool waits for an answer (<c>question</c>: the request).</summary>
    public const string QuestionAsked = "question.asked";
    /// <summary>A question was answered (<c>question</c>: <c>{id, sessionID, answers}</c>).</summary>
    public const string QuestionReplied = "question.replied";
    /// <summary>A question was dismissed (<c>question</c>: <c>{id, sessionID}</c>); the tool call ends with an error.</summary>
    public const string QuestionRejected = "question.rejected";
    /// <summary>
    /// A descendant session (a subagent's) was created or changed (title, status): <c>childSessionId</c> and
    /// <c>child</c>. Delivered on the streams of all its ancestors.
    /// </summary>
    public const string ChildUpdated = "child.updated";
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
