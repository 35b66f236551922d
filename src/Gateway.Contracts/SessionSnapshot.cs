using System.Text.Json;

namespace OpencodeGateway.Contracts;

/// <summary>
/// A session's full state, consistent with <see cref="Seq"/> in <see cref="Epoch"/>: apply every later event
/// (seq &gt; <see cref="Seq"/>) on top of it; ignore events with seq ≤ <see cref="Seq"/>.
/// In-flight text parts already hold the text streamed so far, even where opencode has not stored it yet.
/// </summary>
public sealed record SessionSnapshot
{
    public required string Upstream { get; init; }
    public required string SessionId { get; init; }
    public required long Epoch { get; init; }
    public required long Seq { get; init; }
    /// <summary>opencode's session info (id, title, directory, time, …).</summary>
    public required JsonElement Session { get; init; }
    /// <summary>
    /// The newest messages (at most <c>Gateway:Snapshots:MaxMessages</c>), oldest first, each with its parts in order.
    /// Older ones, when there are any, are paged with <c>LoadEarlier</c> from <see cref="Earlier"/>.
    /// </summary>
    public required IReadOnlyList<MessageWithParts> Messages { get; init; }

    /// <summary>Set when the session has messages older than <see cref="Messages"/>: where <c>LoadEarlier</c> starts.</summary>
    public EarlierMessages? Earlier { get; init; }
    /// <summary><c>{"type":"idle"|"busy"|"retry",…}</c>.</summary>
    public required JsonElement Status { get; init; }
    /// <summary>
    /// Permission requests waiting for a reply, of this session and of its descendants (a request's <c>sessionID</c>
    /// says whose).
    /// </summary>
    public required IReadOnlyList<JsonElement> Permissions { get; init; }
    /// <summary>Questions waiting for an answer, of this session and of its descendants (as <c>question.asked</c>'s).</summary>
    public IReadOnlyList<JsonElement> Questions { get; init; } = [];
    /// <summary>The session's descendants (subagent sessions, any depth), oldest first.</summary>
    public IReadOnlyList<ChildSession> Children { get; init; } = [];
    /// <summary>The todo list, when the session has one.</summary>
    public JsonElement? Todos { get; init; }
    /// <summary>The gateway's metadata for the session (owner, workspace, tags, …), when it has a record of it.</summary>
    public SessionMetadata? Metadata { get; init; }

    /// <summary>
    /// Where the text of in-flight parts is not continuous: part id → field → sorted UTF-16 offsets. The text before
    /// each offset is what opencode streamed; text after it followed text the gateway never received. Absent when
    /// every text is continuous.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>>? Gaps { get; init; }

    /// <summary>
    /// The handles of the part fields the gateway streams: part id → field → handle (see <see cref="SessionEvent.Handle"/>).
    /// A compact delta (<see cref="ISessionClient.D"/>) names one of these, or one an event after the snapshot introduced.
    /// Absent when no part field has one.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, int>>? Handles { get; init; }

    /// <summary>
    /// Compact connections only: this connection's handle of the session in the snapshot's epoch, the first argument of
    /// <see cref="ISessionClient.D"/> (see <see cref="JoinResult.SessionHandle"/>).
    /// </summary>
    public int? SessionHandle { get; init; }
}

/// <summary>One message: opencode's message info and its parts.</summary>
public sealed record MessageWithParts(JsonElement Info, IReadOnlyList<JsonElement> Parts);

/// <summary>Where the messages older than a snapshot's (or a page's) begin: pass <see cref="Cursor"/> to <c>LoadEarlier</c>.</summary>
public sealed record EarlierMessages(string Cursor);

/// <summary>
/// A descendant session of the session a client watches (opencode's <c>task</c> tool starts one per subagent call).
/// </summary>
/// <param name="Id">Its session id: join it to watch it whole.</param>
/// <param name="ParentId">Its parent: the watched session or another descendant.</param>
/// <param name="Title">opencode's title (e.g. <c>"sub task (@general subagent)"</c>).</param>
/// <param name="Status"><c>{"type":"idle"|"busy"|"retry",…}</c>.</param>
public sealed record ChildSession(string Id, string ParentId, string? Title, JsonElement Status);
