using System.Text.Json;

namespace OpencodeGateway.Ingest;

/// <summary>What an opencode event means to the gateway, independent of the opencode version that sent it.</summary>
internal enum UpstreamEventKind
{
    /// <summary>Not for the gateway (plugin, lsp, pty, sync duplicates, …).</summary>
    Ignored,
    /// <summary>The line was not a well-formed opencode event.</summary>
    Malformed,
    ServerConnected,
    Heartbeat,
    PartUpdated,
    PartDelta,
    PartRemoved,
    MessageUpdated,
    MessageRemoved,
    Status,
    Error,
    PermissionAsked,
    PermissionReplied,
    QuestionAsked,
    QuestionReplied,
    QuestionRejected,
    TodoUpdated,
    SessionUpdated,
    SessionDeleted,
}

/// <summary>One normalised upstream event. JSON members are cloned: they outlive the parsed line.</summary>
internal sealed class UpstreamEvent
{
    public static readonly UpstreamEvent Ignored = new() { Kind = UpstreamEventKind.Ignored };
    public static readonly UpstreamEvent Heartbeat = new() { Kind = UpstreamEventKind.Heartbeat };
    public static readonly UpstreamEvent ServerConnected = new() { Kind = UpstreamEventKind.ServerConnected };

    public required UpstreamEventKind Kind { get; init; }
    public string? Type { get; init; }
    public string? SessionId { get; init; }
    public string? MessageId { get; init; }
    public string? PartId { get; init; }
    public string? Field { get; init; }
    /// <summary>Text appended by a delta (separate delta event, or the optional <c>delta</c> of a part update).</summary>
    public string? Delta { get; init; }
    /// <summary>
    /// Part, message info, session info, status, error, permission request, question request (asked), answers
    /// (replied) or todo list.
    /// </summary>
    public JsonElement Payload { get; init; }
    public string? RequestId { get; init; }
    public string? Reply { get; init; }
    /// <summary><c>session.created</c>/<c>updated</c>: the session's parent (a subagent's session), null for a root.</summary>
    public string? ParentId { get; init; }
    /// <summary>Size of the upstream line, an estimate of what the event costs to keep.</summary>
    public int Size { get; init; }
    public string? Problem { get; init; }

    public static UpstreamEvent Malformed(string problem, int size) =>
        new() { Kind = UpstreamEventKind.Malformed, Problem = problem, Size = size };
}
