using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Sequencing;

/// <summary>What opencode's REST API says of a session: the base a snapshot overlays with the live state.</summary>
/// <param name="Messages">The newest messages (a window), oldest first.</param>
/// <param name="Status">The session's entry of <c>GET /session/status</c>, or idle when absent.</param>
/// <param name="Permissions">The pending permission requests of this session and its descendants.</param>
/// <param name="Size">Estimated bytes held (for cache bounds).</param>
public sealed record SessionRestState(JsonElement Info, IReadOnlyList<MessageWithParts> Messages, JsonElement? Todos,
    JsonElement Status, IReadOnlyList<JsonElement> Permissions, long Size)
{
    /// <summary>opencode's cursor of the messages before <see cref="Messages"/>, when there are any.</summary>
    public string? EarlierCursor { get; init; }

    /// <summary>The pending questions of this session and its descendants.</summary>
    public IReadOnlyList<JsonElement> Questions { get; init; } = [];

    /// <summary>The session's descendants, oldest first.</summary>
    public IReadOnlyList<ChildSession> Children { get; init; } = [];
}

internal sealed record LiveMessageImage(JsonElement? Info, bool Removed);

/// <summary>Requests a run waits for (permissions or questions): pending ones by id, and the ids answered this epoch.</summary>
internal sealed record LiveRequestsImage(IReadOnlyDictionary<string, JsonElement> Pending, IReadOnlySet<string> Answered)
{
    public static readonly LiveRequestsImage Empty = new(new Dictionary<string, JsonElement>(), new HashSet<string>());

    /// <summary>opencode's pending list corrected by what this epoch saw asked and answered.</summary>
    public List<JsonElement> Merge(IEnumerable<JsonElement> stored)
    {
        var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var request in stored)
        {
            if (request.TryGetProperty("id", out var id) && id.GetString() is { } requestId && !Answered.Contains(requestId))
            {
                result[requestId] = request;
            }
        }

        foreach (var (id, request) in Pending)
        {
            result[id] = request;
        }

        return [.. result.Values];
    }
}

internal sealed record LiveFieldImage(string Name, string Text, IReadOnlyList<int> Gaps)
{
    /// <summary>The field's handle (<see cref="SessionEvent.Handle"/>).</summary>
    public int Handle { get; init; }
}

/// <param name="Json">The latest part object without its streamed fields, when known.</param>
/// <param name="JsonStale">The object is from an earlier epoch: opencode's stored part is fresher.</param>
internal sealed record LivePartImage(string MessageId, JsonElement? Json, bool JsonStale, bool Removed, IReadOnlyList<LiveFieldImage> Fields);

/// <summary>
/// An immutable copy of a session's live state at (<see cref="Epoch"/>, <see cref="Seq"/>): everything the events of
/// this epoch changed. Overlaid on a <see cref="SessionRestState"/> fetched within the same epoch it makes a snapshot
/// consistent with <see cref="Seq"/>: every change since the epoch began is in the image, and the image is never older
/// than the base (it is read after the base is fetched), so the image wins wherever it knows something.
/// </summary>
internal sealed record LiveSessionImage(
    SessionKey Key,
    long Epoch,
    long Seq,
    JsonElement? SessionInfo,
    JsonElement? Status,
    JsonElement? Todos,
    IReadOnlyDictionary<string, LiveMessageImage> Messages,
    IReadOnlyDictionary<string, LivePartImage> Parts,
    LiveRequestsImage Permissions)
{
    /// <summary>The connection of the upstream's event stream the state is continuous with (null: none).</summary>
    public string? StreamId { get; init; }

    /// <summary>Questions asked and answered this epoch, of the session and its descendants.</summary>
    public LiveRequestsImage Questions { get; init; } = LiveRequestsImage.Empty;

    /// <summary>The descendants this epoch heard of (created, renamed, status changed).</summary>
    public IReadOnlyList<ChildSession> Children { get; init; } = [];

    /// <summary>
    /// The snapshot: the stored state overlaid with this image, cut to the newest <paramref name="maxMessages"/>
    /// messages (<see cref="SessionSnapshot.Earlier"/> says where older ones begin).
    /// </summary>
    /// <param name="earlierCursor">opencode's cursor before a given message (its id and creation time).</param>
    public SessionSnapshot ToSnapshot(SessionRestState stored, SessionMetadata? metadata, int maxMessages,
        Func<string, long, string> earlierCursor)
    {
        var status = Status ?? stored.Status;
        var idle = status.TryGetProperty("type", out var type) && type.ValueEquals("idle");
        var messages = MergeMessages(stored.Messages, idle, maxMessages, out var gaps, out var handles, out var cut);
        string? earlier = null;
        if ((cut || stored.EarlierCursor is not null) && messages.Count > 0)
        {
            earlier = CreatedOf(messages[0].Info) is { } created
                ? earlierCursor(messages[0].Info.GetProperty("id").GetString()!, created)
                : stored.EarlierCursor;
        }

        return new SessionSnapshot
        {
            Upstream = Key.Upstream,
            SessionId = Key.SessionId,
            Epoch = Epoch,
            Seq = Seq,
            Session = SessionInfo ?? stored.Info,
            Messages = messages,
            Earlier = earlier is null ? null : new EarlierMessages(earlier),
            Status = status,
            Permissions = Permissions.Merge(stored.Permissions),
            Questions = Questions.Merge(stored.Questions),
            Children = MergeChildren(stored.Children),
            Todos = Todos ?? (stored.Todos is { ValueKind: JsonValueKind.Array } ? stored.Todos : null),
            Metadata = metadata,
            Gaps = gaps,
            Handles = handles,
        };
    }

    private static long? CreatedOf(JsonElement info) =>
        info.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object
        && time.TryGetProperty("created", out var created) && created.TryGetInt64(out var value) ? value : null;

    /// <summary>opencode's descendants overlaid with what this epoch heard; oldest first (ids sort newest first).</summary>
    private List<ChildSession> MergeChildren(IReadOnlyList<ChildSession> stored)
    {
        var result = new Dictionary<string, ChildSession>(StringComparer.Ordinal);
        foreach (var child in stored)
        {
            result[child.Id] = child;
        }

        foreach (var child in Children)
        {
            result[child.Id] = child;
        }

        return [.. result.Values.OrderByDescending(c => c.Id, StringComparer.Ordinal)];
    }

    private List<MessageWithParts> MergeMessages(IReadOnlyList<MessageWithParts> stored, bool idle, int maxMessages,
        out Dictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>>? gaps,
        out Dictionary<string, IReadOnlyDictionary<string, int>>? handles, out bool cut)
    {
        gaps = null;
        handles = null;
        var messages = new SortedDictionary<string, (JsonElement? Info, SortedDictionary<string, JsonElement> Parts)>(StringComparer.Ordinal);
        foreach (var message in stored)
        {
            var parts = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in message.Parts)
            {
                parts[p.GetProperty("id").GetString()!] = p;
            }

            messages[message.Info.GetProperty("id").GetString()!] = (message.Info, parts);
        }

        foreach (var (id, live) in Messages)
        {
            if (live.Removed)
            {
                messages.Remove(id);
            }
            else if (live.Info is { } info)
            {
                messages[id] = (info, messages.TryGetValue(id, out var existing) ? existing.Parts : new(StringComparer.Ordinal));
            }
        }

        // The window: the newest messages only (ids sort by time). What is older is paged from opencode's store, where
        // it has ended; the live state of an epoch can hold more than the window.
        cut = messages.Count > maxMessages;
        foreach (var id in messages.Keys.Take(Math.Max(0, messages.Count - maxMessages)).ToList())
        {
            messages.Remove(id);
        }

        var oldest = messages.Count > 0 ? messages.Keys.First() : null;
        foreach (var (partId, live) in Parts)
        {
            if (oldest is not null && string.CompareOrdinal(live.MessageId, oldest) < 0)
            {
                continue;
            }

            if (!messages.TryGetValue(live.MessageId, out var message))
            {
                if (live.Removed || Messages.TryGetValue(live.MessageId, out var m) && m.Removed)
                {
                    continue;
                }

                message = (null, new SortedDictionary<string, JsonElement>(StringComparer.Ordinal));
                messages[live.MessageId] = message;
            }

            if (live.Removed)
            {
                message.Parts.Remove(partId);
                continue;
            }

            var storedPart = message.Parts.TryGetValue(partId, out var s) ? s : default;
            message.Parts[partId] = MergePart(partId, live, storedPart, idle, out var partGaps);
            if (partGaps is not null)
            {
                (gaps ??= new(StringComparer.Ordinal))[partId] = partGaps;
            }

            if (live.Fields.Count > 0)
            {
                (handles ??= new(StringComparer.Ordinal))[partId] = live.Fields.ToDictionary(f => f.Name, f => f.Handle, StringComparer.Ordinal);
            }
        }

        var result = new List<MessageWithParts>(messages.Count);
        foreach (var (id, (info, parts)) in messages)
        {
            result.Add(new MessageWithParts(info ?? StubInfo(id), [.. parts.Values]));
        }

        return result;
    }

    /// <summary>
    /// The part as a client must see it: the freshest object with the streamed fields. A text with gaps gives way to
    /// opencode's stored text once nothing more can come: the part has ended (the stored text is whole), or the session
    /// is idle while the part never ended (opencode lost the rest, e.g. it restarted mid-answer, and keeps what it has).
    /// </summary>
    private JsonElement MergePart(string partId, LivePartImage live, JsonElement stored, bool idle,
        out Dictionary<string, IReadOnlyList<int>>? gaps)
    {
        gaps = null;
        var hasStored = stored.ValueKind == JsonValueKind.Object;
        var source = live.Json is { } json && !(live.JsonStale && hasStored) ? json : stored;
        var storedFinal = hasStored && (idle || (stored.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object
            && time.TryGetProperty("end", out _)));
        if (live.JsonStale && hasStored && PartFields.IsTool(stored))
        {
            // opencode stores a tool part whole on every update: after a break its stored part, output included, is
            // fresher than what the gateway carried over (and the part's next update restates it whole).
            return stored;
        }

        var part = source.ValueKind == JsonValueKind.Object
            ? JsonSerializer.SerializeToNode(source)!.AsObject()
            : new JsonObject { ["id"] = partId, ["messageID"] = live.MessageId, ["sessionID"] = Key.SessionId };
        foreach (var field in live.Fields)
        {
            if (field.Gaps.Count > 0 && storedFinal && PartFields.GetString(stored, field.Name) is { } whole)
            {
                PartFields.Set(part, field.Name, whole);
                continue;
            }

            PartFields.Set(part, field.Name, field.Text);
            if (field.Gaps.Count > 0)
            {
                (gaps ??= new(StringComparer.Ordinal))[field.Name] = field.Gaps;
            }
        }

        return JsonSerializer.SerializeToElement(part);
    }

    private JsonElement StubInfo(string messageId) =>
        JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["id"] = messageId, ["sessionID"] = Key.SessionId });
}
