using System.Collections.Immutable;
using System.Text.Json;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>
/// What a client shows of one watched session at one moment, kept by the client rules (immutable: every change makes a
/// new view, and what did not change keeps its objects, so a UI can compare by reference). Read it from any thread.
/// </summary>
public sealed record SessionView
{
    internal static readonly JsonElement Idle = JsonSerializer.SerializeToElement(new { type = "idle" });

    public required string SessionId { get; init; }

    public string? Upstream { get; internal init; }

    /// <summary>The position this view is consistent with: the last event applied (0/0 before the first join).</summary>
    public long Epoch { get; internal init; }

    public long Seq { get; internal init; }

    /// <summary>True once a join's result (a snapshot or recovered events) was applied.</summary>
    public bool Ready { get; internal init; }

    /// <summary>opencode's session info (title, directory, time, …).</summary>
    public JsonElement? Session { get; internal init; }

    /// <summary>The messages held, ordered by id (oldest first); older ones are paged in with <c>LoadEarlierAsync</c>.</summary>
    public IReadOnlyList<MessageView> Messages => MessageList;

    /// <summary><c>{"type":"idle"|"busy"|"retry",…}</c>.</summary>
    public JsonElement Status { get; internal init; } = Idle;

    /// <summary><c>idle</c>, <c>busy</c> or <c>retry</c>.</summary>
    public string StatusType => Status.ValueKind == JsonValueKind.Object && Status.TryGetProperty("type", out var type) ? type.GetString() ?? "idle" : "idle";

    /// <summary>
    /// Permission requests waiting for a reply, of the session and of its descendants (a request's <c>sessionID</c> says
    /// whose): answer each with this session's id.
    /// </summary>
    public IReadOnlyList<JsonElement> Permissions { get; internal init; } = [];

    /// <summary>Questions waiting for an answer, of the session and of its descendants.</summary>
    public IReadOnlyList<JsonElement> Questions { get; internal init; } = [];

    /// <summary>The descendant sessions (subagents', any depth), oldest first.</summary>
    public IReadOnlyList<ChildSession> Children { get; internal init; } = [];

    /// <summary>Set while messages older than the first one held exist.</summary>
    public EarlierMessages? Earlier { get; internal init; }

    public JsonElement? Todos { get; internal init; }

    /// <summary>The gateway's record of the session (owner, workspace, title, tags, metadata), when it has one.</summary>
    public SessionMetadata? Metadata { get; internal init; }

    /// <summary>The last <c>error</c> event (opencode's <c>{name, data}</c>); cleared when the session is busy again.</summary>
    public JsonElement? Error { get; internal init; }

    /// <summary>Why (re)joining the session failed for good (e.g. <c>session_not_found</c>), when it did.</summary>
    public GatewayException? JoinError { get; internal init; }

    /// <summary>The session was deleted.</summary>
    public bool Deleted { get; internal init; }

    public StreamPosition Position => new(Epoch, Seq);

    internal ImmutableList<MessageView> MessageList { get; init; } = [];

    /// <summary>Part field handles of the session's state (compact deltas name a field by its handle alone).</summary>
    internal ImmutableDictionary<int, PartField> PartHandles { get; init; } = ImmutableDictionary<int, PartField>.Empty;

    /// <summary>The message with this id, if held.</summary>
    public MessageView? Message(string messageId) => SortedById.Find(MessageList, messageId, m => m.Id);

    /// <summary>The part with this id, if held.</summary>
    public PartView? Part(string partId)
    {
        foreach (var message in MessageList)
        {
            if (SortedById.Find(message.PartList, partId, p => p.Id) is { } part)
            {
                return part;
            }
        }

        return null;
    }

    /// <summary>Every part of every message, in order.</summary>
    public IEnumerable<PartView> Parts => MessageList.SelectMany(m => m.PartList);
}
