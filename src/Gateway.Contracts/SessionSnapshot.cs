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
    /// <summary>Oldest first, each with its parts in order.</summary>
    public required IReadOnlyList<MessageWithParts> Messages { get; init; }
    /// <summary><c>{"type":"idle"|"busy"|"retry",…}</c>.</summary>
    public required JsonElement Status { get; init; }
    /// <summary>Permission requests waiting for a reply.</summary>
    public required IReadOnlyList<JsonElement> Permissions { get; init; }
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
