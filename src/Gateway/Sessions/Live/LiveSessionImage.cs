using System.Buffers;
using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Sessions.Live;

/// <summary>What opencode's REST API says of a session: the base a snapshot overlays with the live state.</summary>
/// <param name="Status">The session's entry of <c>GET /session/status</c>, or idle when absent.</param>
/// <param name="Permissions">The pending permission requests of this session.</param>
/// <param name="Size">Estimated bytes held (for cache bounds).</param>
public sealed record SessionRestState(JsonElement Info, IReadOnlyList<MessageWithParts> Messages, JsonElement? Todos,
    JsonElement Status, IReadOnlyList<JsonElement> Permissions, long Size);

internal sealed record LiveMessageImage(JsonElement? Info, bool Removed);

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
    IReadOnlyDictionary<string, JsonElement> PendingPermissions,
    IReadOnlySet<string> RepliedPermissions)
{
    /// <summary>The connection of the upstream's event stream the state is continuous with (null: none).</summary>
    public string? StreamId { get; init; }

    public SessionSnapshot ToSnapshot(SessionRestState stored, SessionMetadata? metadata)
    {
        var status = Status ?? stored.Status;
        var idle = status.TryGetProperty("type", out var type) && type.ValueEquals("idle");
        var messages = MergeMessages(stored.Messages, idle, out var gaps, out var handles);
        return new SessionSnapshot
        {
            Upstream = Key.Upstream,
            SessionId = Key.SessionId,
            Epoch = Epoch,
            Seq = Seq,
            Session = SessionInfo ?? stored.Info,
            Messages = messages,
            Status = status,
            Permissions = MergePermissions(stored.Permissions),
            Todos = Todos ?? (stored.Todos is { ValueKind: JsonValueKind.Array } ? stored.Todos : null),
            Metadata = metadata,
            Gaps = gaps,
            Handles = handles,
        };
    }

    private List<MessageWithParts> MergeMessages(IReadOnlyList<MessageWithParts> stored, bool idle,
        out Dictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>>? gaps,
        out Dictionary<string, IReadOnlyDictionary<string, int>>? handles)
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

        foreach (var (partId, live) in Parts)
        {
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
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (source.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in source.EnumerateObject())
                {
                    if (!live.Fields.Any(f => property.NameEquals(f.Name)))
                    {
                        property.WriteTo(writer);
                    }
                }
            }
            else
            {
                writer.WriteString("id", partId);
                writer.WriteString("messageID", live.MessageId);
                writer.WriteString("sessionID", Key.SessionId);
            }

            foreach (var field in live.Fields)
            {
                if (field.Gaps.Count > 0 && storedFinal && stored.TryGetProperty(field.Name, out var whole)
                    && whole.ValueKind == JsonValueKind.String)
                {
                    writer.WriteString(field.Name, whole.GetString());
                    continue;
                }

                writer.WriteString(field.Name, field.Text);
                if (field.Gaps.Count > 0)
                {
                    (gaps ??= new(StringComparer.Ordinal))[field.Name] = field.Gaps;
                }
            }

            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    /// <summary>Pending requests: opencode's list corrected by what this epoch saw asked and replied.</summary>
    private List<JsonElement> MergePermissions(IEnumerable<JsonElement> stored)
    {
        var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var request in stored)
        {
            if (request.TryGetProperty("id", out var id) && id.GetString() is { } requestId && !RepliedPermissions.Contains(requestId))
            {
                result[requestId] = request;
            }
        }

        foreach (var (id, request) in PendingPermissions)
        {
            result[id] = request;
        }

        return [.. result.Values];
    }

    private JsonElement StubInfo(string messageId) =>
        JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["id"] = messageId, ["sessionID"] = Key.SessionId });
}
