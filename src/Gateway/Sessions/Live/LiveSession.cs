using System.Buffers;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions.History;
using OpencodeGateway.Streaming;

namespace OpencodeGateway.Sessions.Live;

/// <summary>
/// What the gateway knows of one session in the current epoch: sequence, replay log and everything upstream events
/// changed (messages, parts with their streamed text, status, permissions). Lock <see cref="Gate"/> around every use.
/// </summary>
internal sealed class LiveSession
{
    private readonly ReplayLog _replay;
    private readonly Dictionary<string, LiveMessage> _messages = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LivePart> _parts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, JsonElement> _pendingPermissions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _repliedPermissions = new(StringComparer.Ordinal);
    private string? _statusType;

    public LiveSession(string upstream, string sessionId, long epoch, int maxEvents, long maxBytes, long now)
    {
        Upstream = upstream;
        SessionId = sessionId;
        GroupName = GroupNameOf(upstream, sessionId);
        Epoch = epoch;
        _replay = new ReplayLog(maxEvents, maxBytes);
        LastActivity = now;
    }

    public object Gate { get; } = new();
    public string Upstream { get; }
    public string SessionId { get; }
    public string GroupName { get; }
    public long Epoch { get; private set; }
    public long Seq { get; private set; }
    /// <summary>Connections that joined this session on this node.</summary>
    public int Watchers { get; set; }
    public long LastActivity { get; set; }
    /// <summary>Set when the registry dropped this state: callers holding it must look it up again.</summary>
    public bool Evicted { get; set; }
    public JsonElement? Status { get; private set; }
    public JsonElement? SessionInfo { get; private set; }
    public JsonElement? Todos { get; private set; }
    public bool Busy => _statusType is "busy" or "retry";
    public ReplayLog Replay => _replay;

    public static string GroupNameOf(string upstream, string sessionId) => $"session:{upstream}:{sessionId}";

    /// <summary>Continuity is lost: start a new epoch with nothing known.</summary>
    public void Reset(long epoch)
    {
        Epoch = epoch;
        Seq = 0;
        _replay.Clear();
        _messages.Clear();
        _parts.Clear();
        _pendingPermissions.Clear();
        _repliedPermissions.Clear();
        _statusType = null;
        Status = null;
        SessionInfo = null;
        Todos = null;
    }

    /// <summary>Applies one upstream event; returns what clients get, or null when it changes nothing they see.</summary>
    public SessionEvent? Apply(UpstreamEvent e)
    {
        switch (e.Kind)
        {
            case UpstreamEventKind.PartDelta:
                return ApplyDelta(e.MessageId!, e.PartId!, e.Field!, e.Delta!, e.Size);
            case UpstreamEventKind.PartUpdated:
                return ApplyPartUpdated(e);
            case UpstreamEventKind.PartRemoved:
            {
                if (_parts.TryGetValue(e.PartId!, out var part))
                {
                    part.Removed = true;
                }
                else
                {
                    _parts[e.PartId!] = new LivePart(e.MessageId ?? "") { Removed = true };
                }

                return Next(SessionEventTypes.PartRemoved, e.Size, messageId: e.MessageId, partId: e.PartId);
            }
            case UpstreamEventKind.MessageUpdated:
                Message(e.MessageId!).Info = e.Payload;
                return Next(SessionEventTypes.MessageUpdated, e.Size, messageId: e.MessageId, info: e.Payload);
            case UpstreamEventKind.MessageRemoved:
                Message(e.MessageId!).Removed = true;
                return Next(SessionEventTypes.MessageRemoved, e.Size, messageId: e.MessageId);
            case UpstreamEventKind.Status:
            {
                var type = e.Payload.TryGetProperty("type", out var t) ? t.GetString() : null;
                // opencode repeats "busy" several times a turn; clients only need changes (a retry always changes).
                if (type == _statusType && type != "retry")
                {
                    return null;
                }

                _statusType = type;
                Status = e.Payload;
                return Next(SessionEventTypes.Status, e.Size, status: e.Payload);
            }
            case UpstreamEventKind.Error:
                return Next(SessionEventTypes.Error, e.Size, error: e.Payload);
            case UpstreamEventKind.PermissionAsked:
                _pendingPermissions[e.RequestId!] = e.Payload;
                _repliedPermissions.Remove(e.RequestId!);
                return Next(SessionEventTypes.PermissionAsked, e.Size, permission: e.Payload);
            case UpstreamEventKind.PermissionReplied:
                _pendingPermissions.Remove(e.RequestId!);
                _repliedPermissions.Add(e.RequestId!);
                return Next(SessionEventTypes.PermissionReplied, e.Size, requestId: e.RequestId, reply: e.Reply);
            case UpstreamEventKind.TodoUpdated:
                Todos = e.Payload;
                return Next(SessionEventTypes.TodoUpdated, e.Size, todos: e.Payload);
            case UpstreamEventKind.SessionUpdated:
                SessionInfo = e.Payload;
                return Next(SessionEventTypes.SessionUpdated, e.Size, info: e.Payload);
            case UpstreamEventKind.SessionDeleted:
                return Next(SessionEventTypes.SessionDeleted, e.Size);
            default:
                return null;
        }
    }

    private SessionEvent ApplyDelta(string messageId, string partId, string field, string delta, int size)
    {
        if (!_parts.TryGetValue(partId, out var part))
        {
            // A delta may arrive before its part's first update.
            part = new LivePart(messageId);
            _parts[partId] = part;
        }

        var text = part.Field(field);
        var offset = text.Length;
        text.Append(delta);
        return Next(SessionEventTypes.PartDelta, size, messageId: messageId, partId: partId, field: field, offset: offset, delta: delta);
    }

    private SessionEvent ApplyPartUpdated(UpstreamEvent e)
    {
        var partJson = e.Payload;
        var partId = e.PartId!;
        var isNew = !_parts.TryGetValue(partId, out var part);
        if (part is null)
        {
            part = new LivePart(e.MessageId!);
            _parts[partId] = part;
        }

        part.MessageId = e.MessageId!;
        part.Removed = false;
        var hasText = partJson.TryGetProperty("text", out var textElement) && textElement.ValueKind == JsonValueKind.String;
        var withoutText = hasText ? WithoutMember(partJson, "text") : partJson;
        var metaChanged = isNew || !part.HasJson || !JsonElementsEqual(part.Json, withoutText);
        part.Json = withoutText;
        part.HasJson = true;
        part.HasTextMember |= hasText;

        if (!hasText)
        {
            return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson);
        }

        var text = part.Field("text");
        var upstreamText = textElement.GetString()!;

        // Older releases: the full part plus the appended text. Send only the delta when it lines up.
        if (e.Delta is { Length: > 0 } delta && !metaChanged && upstreamText.Length == text.Length + delta.Length
            && upstreamText.EndsWith(delta, StringComparison.Ordinal) && StartsWith(upstreamText, text))
        {
            var offset = text.Length;
            text.Append(delta);
            return Next(SessionEventTypes.PartDelta, e.Size, messageId: e.MessageId, partId: partId, field: "text", offset: offset, delta: delta);
        }

        var ended = partJson.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object
            && time.TryGetProperty("end", out _);
        if (Equals(text, upstreamText) || (!ended && upstreamText.Length <= text.Length && StartsWith(text.ToString(), upstreamText)))
        {
            // Same text, or a stale copy of text we streamed further already: clients keep theirs.
            return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: withoutText);
        }

        text.Clear().Append(upstreamText);
        return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson);
    }

    private SessionEvent Next(string type, int size, string? messageId = null, string? partId = null, string? field = null,
        int? offset = null, string? delta = null, JsonElement? part = null, JsonElement? info = null, JsonElement? status = null,
        JsonElement? error = null, JsonElement? permission = null, string? requestId = null, string? reply = null,
        JsonElement? todos = null)
    {
        var evt = new SessionEvent
        {
            Upstream = Upstream, SessionId = SessionId, Epoch = Epoch, Seq = ++Seq, Type = type,
            MessageId = messageId, PartId = partId, Field = field, Offset = offset, Delta = delta, Part = part, Info = info,
            Status = status, Error = error, Permission = permission, RequestId = requestId, Reply = reply, Todos = todos,
        };
        _replay.Append(evt, size + 64);
        return evt;
    }

    /// <summary>The role of a message this epoch saw (<c>user</c>/<c>assistant</c>), if it saw one.</summary>
    public string? RoleOf(string messageId) =>
        _messages.TryGetValue(messageId, out var message) && message.Info is { } info && info.TryGetProperty("role", out var role)
            ? role.GetString()
            : null;

    private LiveMessage Message(string id)
    {
        if (!_messages.TryGetValue(id, out var message))
        {
            message = new LiveMessage();
            _messages[id] = message;
        }

        return message;
    }

    /// <summary>Overlays what this epoch saw on opencode's stored messages (which lack in-flight text).</summary>
    public List<MessageWithParts> Merge(IReadOnlyList<MessageWithParts> stored)
    {
        var messages = new SortedDictionary<string, (JsonElement? Info, SortedDictionary<string, JsonElement> Parts)>(StringComparer.Ordinal);
        foreach (var message in stored)
        {
            var id = message.Info.GetProperty("id").GetString()!;
            var parts = new SortedDictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in message.Parts)
            {
                parts[p.GetProperty("id").GetString()!] = p;
            }

            messages[id] = (message.Info, parts);
        }

        foreach (var (id, live) in _messages)
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

        foreach (var (partId, live) in _parts)
        {
            if (!messages.TryGetValue(live.MessageId, out var message))
            {
                if (live.Removed || _messages.TryGetValue(live.MessageId, out var m) && m.Removed)
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

            message.Parts.TryGetValue(partId, out var storedPart);
            message.Parts[partId] = live.ToJson(partId, SessionId, storedPart);
        }

        var result = new List<MessageWithParts>(messages.Count);
        foreach (var (id, (info, parts)) in messages)
        {
            result.Add(new MessageWithParts(info ?? StubInfo(id), [.. parts.Values]));
        }

        return result;
    }

    /// <summary>Pending requests: opencode's list corrected by what this epoch saw asked and replied.</summary>
    public List<JsonElement> MergePermissions(IEnumerable<JsonElement> stored)
    {
        var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var request in stored)
        {
            if (request.TryGetProperty("id", out var id) && id.GetString() is { } requestId && !_repliedPermissions.Contains(requestId))
            {
                result[requestId] = request;
            }
        }

        foreach (var (id, request) in _pendingPermissions)
        {
            result[id] = request;
        }

        return [.. result.Values];
    }

    private JsonElement StubInfo(string messageId) =>
        JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["id"] = messageId, ["sessionID"] = SessionId });

    private static bool Equals(StringBuilder builder, string text) => builder.Length == text.Length && builder.Equals(text.AsSpan());

    private static bool StartsWith(string text, StringBuilder prefix) =>
        prefix.Length <= text.Length && prefix.Equals(text.AsSpan(0, prefix.Length));

    private static bool StartsWith(string text, string prefix) => text.StartsWith(prefix, StringComparison.Ordinal);

    private static bool JsonElementsEqual(JsonElement a, JsonElement b) => JsonElement.DeepEquals(a, b);

    internal static JsonElement WithoutMember(JsonElement obj, string member)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var property in obj.EnumerateObject())
            {
                if (!property.NameEquals(member))
                {
                    property.WriteTo(writer);
                }
            }

            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    private sealed class LiveMessage
    {
        public JsonElement? Info { get; set; }
        public bool Removed { get; set; }
    }

    private sealed class LivePart(string messageId)
    {
        private List<(string Name, StringBuilder Text)>? _fields;

        public string MessageId { get; set; } = messageId;
        /// <summary>The latest part object without its text.</summary>
        public JsonElement Json { get; set; }
        public bool HasJson { get; set; }
        public bool HasTextMember { get; set; }
        public bool Removed { get; set; }

        public StringBuilder Field(string name)
        {
            _fields ??= [];
            foreach (var (n, text) in _fields)
            {
                if (n == name)
                {
                    return text;
                }
            }

            var created = new StringBuilder();
            _fields.Add((name, created));
            return created;
        }

        /// <summary>The part as a client must see it: the latest object with the streamed fields.</summary>
        public JsonElement ToJson(string partId, string sessionId, JsonElement stored)
        {
            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                var source = HasJson ? Json : stored;
                var written = new HashSet<string>(StringComparer.Ordinal);
                if (source.ValueKind == JsonValueKind.Object)
                {
                    foreach (var property in source.EnumerateObject())
                    {
                        if (_fields is not null && _fields.Exists(f => property.NameEquals(f.Name)))
                        {
                            continue;
                        }

                        property.WriteTo(writer);
                        written.Add(property.Name);
                    }
                }
                else
                {
                    writer.WriteString("id", partId);
                    writer.WriteString("messageID", MessageId);
                    writer.WriteString("sessionID", sessionId);
                }

                foreach (var (name, text) in _fields ?? [])
                {
                    writer.WriteString(name, text.ToString());
                }

                writer.WriteEndObject();
            }

            using var document = JsonDocument.Parse(buffer.WrittenMemory);
            return document.RootElement.Clone();
        }
    }
}
