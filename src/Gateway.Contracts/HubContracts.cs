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
}

/// <summary>Argument of <c>CreateSession</c>.</summary>
public sealed record CreateSessionRequest(string? Title = null, string? Upstream = null, string? Workspace = null,
    IReadOnlyList<string>? Tags = null, JsonElement? Metadata = null);

/// <summary>A prompt part. Only <c>text</c> parts are accepted for now.</summary>
public sealed record PromptPart(string Type, string Text);

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

/// <summary>The gateway's record of a session (owner, workspace, tags, free-form metadata).</summary>
public sealed record SessionMetadata
{
    public required string SessionId { get; init; }
    public required string Upstream { get; init; }
    public string? OwnerId { get; init; }
    public string? Workspace { get; init; }
    public string? Title { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public JsonElement? Metadata { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? ArchivedAt { get; init; }
}
