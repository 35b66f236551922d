using System.Text.Json;

namespace OpencodeGateway.Contracts;

/// <summary>What the gateway's session hub (<c>/hubs/session</c>) calls on its clients.</summary>
public interface ISessionClient
{
    /// <summary>One event of a session the connection joined, in the session's order.</summary>
    Task SessionEvent(SessionEvent evt);

    /// <summary>
    /// A fresh snapshot of a joined session, pushed when continuity was lost (upstream reconnect): it starts a new
    /// epoch; replace the session's state with it.
    /// </summary>
    Task SessionSnapshot(SessionSnapshot snapshot);

    /// <summary>
    /// A session the caller may see was created, changed or archived, on any node, through the hub or
    /// <c>/api/sessions</c>: every connection of the user receives it, without joining anything.
    /// </summary>
    Task SessionListChanged(SessionListChange change);

    /// <summary>
    /// A <c>part.delta</c> in compact form, sent instead of its <see cref="SessionEvent"/> to connections that did not ask
    /// for the full form (<c>?events=full</c> on the hub URL). Apply it as that event: the same seq rules, the same
    /// offset rules.
    /// </summary>
    /// <param name="s">
    /// The session and epoch it belongs to: the <c>sessionHandle</c> of the connection's latest join result or pushed
    /// snapshot of the session. A <paramref name="s"/> the client holds for no session is of an epoch it has left behind
    /// (or not reached yet, which an event of the new epoch announces): ignore it.
    /// </param>
    /// <param name="seq">The event's seq in that session's epoch.</param>
    /// <param name="h">
    /// The part field (<see cref="SessionEvent.Handle"/>): introduced by an earlier event of the epoch or by the snapshot's
    /// <c>handles</c>. An unknown handle means the client's state is not the gateway's: rejoin without <c>since</c>.
    /// </param>
    /// <param name="offset">The field's length in UTF-16 code units before the delta.</param>
    /// <param name="delta">The text appended.</param>
    Task D(int s, long seq, int h, int offset, string delta);
}

/// <summary>
/// How a hub connection receives its sessions' events, chosen when it connects with <c>?events=</c> on the hub URL.
/// </summary>
public static class EventForms
{
    /// <summary>The default: text deltas as <see cref="ISessionClient.D"/>, everything else as <see cref="SessionEvent"/>.</summary>
    public const string Compact = "compact";

    /// <summary>Every event as a <see cref="SessionEvent"/>.</summary>
    public const string Full = "full";

    /// <summary>The hub URL's query parameter that picks the form.</summary>
    public const string QueryParameter = "events";
}

/// <summary>A position in a session's stream: the last event a client applied.</summary>
public sealed record StreamPosition(long Epoch, long Seq);

/// <summary>Argument of <c>Join</c>.</summary>
/// <param name="SessionId">opencode's session id (<c>ses_…</c>).</param>
/// <param name="Upstream">Optional upstream id; found by the gateway when omitted.</param>
/// <param name="Since">The last position the client applied, to recover only what it missed.</param>
public sealed record JoinRequest(string SessionId, string? Upstream = null, StreamPosition? Since = null);

/// <summary>Result of <c>Join</c>: either the missed events (<see cref="Recovered"/>) or a snapshot.</summary>
public sealed record JoinResult
{
    public required string Upstream { get; init; }
    public required string SessionId { get; init; }
    public required long Epoch { get; init; }
    /// <summary>The position the result brings the client to.</summary>
    public required long Seq { get; init; }
    /// <summary>True: <see cref="Events"/> holds exactly what the client missed since its <c>since</c>.</summary>
    public required bool Recovered { get; init; }
    public IReadOnlyList<SessionEvent>? Events { get; init; }
    public SessionSnapshot? Snapshot { get; init; }

    /// <summary>
    /// Compact connections only: the session's handle in the result's epoch on this connection, the first argument of
    /// every <see cref="ISessionClient.D"/> of it. It changes with the epoch (a pushed snapshot brings the new one) and
    /// may change when the client rejoins.
    /// </summary>
    public int? SessionHandle { get; init; }
}

/// <summary>Argument of <c>CreateSession</c>.</summary>
public sealed record CreateSessionRequest(string? Title = null, string? Upstream = null, string? Workspace = null,
    IReadOnlyList<string>? Tags = null, JsonElement? Metadata = null);

/// <summary>
/// A prompt part: <c>{type: "text", text}</c>, or an attachment <c>{type: "file", mime, url, filename?}</c> whose
/// <c>url</c> is a <c>data:</c> URL (base64) of at most <c>Gateway:Prompts:MaxAttachmentBytes</c> decoded bytes
/// (opencode's own file part shape; the gateway fetches no URLs and reads no paths).
/// </summary>
public sealed record PromptPart(string Type, string? Text = null)
{
    /// <summary><c>file</c>: the media type (<c>image/png</c>, <c>text/plain</c>, <c>application/pdf</c>, …).</summary>
    public string? Mime { get; init; }

    /// <summary><c>file</c>: <c>data:{mime};base64,{bytes}</c>.</summary>
    public string? Url { get; init; }

    /// <summary><c>file</c>: the name shown for it (optional).</summary>
    public string? Filename { get; init; }
}

/// <summary>Argument of <c>Prompt</c>: either <see cref="Text"/> or <see cref="Parts"/>.</summary>
public sealed record PromptRequest(string SessionId, string? Text = null, IReadOnlyList<PromptPart>? Parts = null,
    string? Agent = null, string? Model = null);

/// <summary>Result of <c>Prompt</c>.</summary>
/// <param name="Queued">
/// True when the session was busy: opencode queues the prompt and answers every queued prompt together, with one
/// assistant message, after the current answer ends.
/// </param>
public sealed record PromptResult(string SessionId, bool Queued);

/// <summary>Argument of <c>ReplyPermission</c>.</summary>
/// <param name="Reply"><c>once</c>, <c>always</c> or <c>reject</c>.</param>
public sealed record PermissionReplyRequest(string SessionId, string RequestId, string Reply, string? Message = null);

/// <summary>Argument of <c>ReplyQuestion</c>.</summary>
/// <param name="SessionId">The session that asked, or any of its ancestors (the root a client watches).</param>
/// <param name="RequestId">The question request's id (<c>que_…</c>).</param>
/// <param name="Answers">One array of chosen labels (or typed answers) per question of the request, in order.</param>
public sealed record QuestionReplyRequest(string SessionId, string RequestId, IReadOnlyList<IReadOnlyList<string>> Answers);

/// <summary>Argument of <c>RejectQuestion</c>: dismisses a question; the tool call ends with an error.</summary>
public sealed record QuestionRejectRequest(string SessionId, string RequestId);

/// <summary>Argument of <c>LoadEarlier</c>.</summary>
/// <param name="Before">The <see cref="EarlierMessages.Cursor"/> of a snapshot or of the previous page.</param>
/// <param name="Limit">Messages per page, 1–100 (default: <c>Gateway:Snapshots:MaxMessages</c>).</param>
public sealed record LoadEarlierRequest(string SessionId, string Before, int? Limit = null);

/// <summary>Result of <c>LoadEarlier</c>: the messages just before the cursor, oldest first, as opencode stored them.</summary>
/// <param name="Earlier">Set when there are older ones still.</param>
public sealed record MessagePage(IReadOnlyList<MessageWithParts> Messages, EarlierMessages? Earlier);

/// <summary>The gateway's record of a session (owner, workspace, tags, free-form metadata).</summary>
public sealed record SessionMetadata
{
    public required string SessionId { get; init; }
    public required string Upstream { get; init; }
    /// <summary>
    /// A subagent's session: its parent. It belongs to whoever may see its root (its owner and workspace are the root's)
    /// and is left out of session lists.
    /// </summary>
    public string? ParentId { get; init; }
    public string? OwnerId { get; init; }
    public string? Workspace { get; init; }
    public string? Title { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public JsonElement? Metadata { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? ArchivedAt { get; init; }
}
