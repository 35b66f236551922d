using System.Buffers;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Ingest;

namespace OpencodeGateway.Sequencing;

/// <summary>
/// The sequencer of one session and what the gateway knows of it in the current epoch: sequence, replay log, and
/// everything upstream events changed (messages, parts with their streamed text and its gaps, status, permissions).
/// Lock <see cref="Gate"/> around every use.
/// </summary>
/// <remarks>
/// The gap rule: a part field's text is continuous from its start only if the gateway saw the part announced (opencode
/// sends every streamed part with <c>text: ""</c> before its deltas) or carried it over a break. A delta for a field
/// the gateway never saw start records a gap at 0; a new epoch (the upstream stream broke) keeps every streamed text
/// and records a gap at its end when the part had not ended. Clients show a mark at each gap, so no fragment is ever
/// presented as the whole text; a <c>part.updated</c> carrying the text restates it and clears the gaps.
/// </remarks>
internal sealed class LiveSession
{
    private readonly ReplayLog _replay;
    private readonly Dictionary<string, LiveMessage> _messages = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LivePart> _parts = new(StringComparer.Ordinal);
    // What a run waits for, of this session and of its descendants, by request id.
    private readonly PendingRequests _permissions = new();
    private readonly PendingRequests _questions = new();
    // The descendants (subagent sessions) this epoch heard of, by id.
    private readonly Dictionary<string, ChildSession> _children = new(StringComparer.Ordinal);
    private string? _statusType;
    private JsonElement? _sessionInfo;
    private JsonElement? _todos;
    // The last part field handle given out (SessionEvent.Handle): never reused while this state lives.
    private int _lastHandle;

    /// <param name="observer">Told every change (a copy kept elsewhere); a new state is new to it: <see cref="ILiveStateObserver.Reset"/>.</param>
    public LiveSession(SessionKey key, long epoch, int maxEvents, long maxBytes, long now, ILiveStateObserver? observer = null)
        : this(key, epoch, maxEvents, maxBytes, now, observer, loaded: false)
    {
    }

    private LiveSession(SessionKey key, long epoch, int maxEvents, long maxBytes, long now, ILiveStateObserver? observer, bool loaded)
    {
        Key = key;
        GroupName = key.GroupName;
        Epoch = epoch;
        _replay = new ReplayLog(maxEvents, maxBytes);
        LastActivity = now;
        Observer = observer;
        if (!loaded)
        {
            observer?.Reset();
        }
    }

    /// <summary>
    /// The live state an image describes, continuing its epoch at its seq (a node taking over the stream); the image
    /// came from the copy <paramref name="observer"/> keeps, which holds it already.
    /// </summary>
    public static LiveSession FromImage(LiveSessionImage image, int maxEvents, long maxBytes, long now, ILiveStateObserver? observer)
    {
        var session = new LiveSession(image.Key, image.Epoch, maxEvents, maxBytes, now, observer, loaded: true)
        {
            Seq = image.Seq, StreamId = image.StreamId,
        };
        session._sessionInfo = image.SessionInfo;
        session._todos = image.Todos;
        session.Status = image.Status;
        session._statusType = image.Status is { } status && status.TryGetProperty("type", out var type) ? type.GetString() : null;
        foreach (var (id, message) in image.Messages)
        {
            session._messages[id] = new LiveMessage { Info = message.Info, Removed = message.Removed };
        }

        foreach (var (id, part) in image.Parts)
        {
            var live = new LivePart(part.MessageId) { Json = part.Json, JsonStale = part.JsonStale, Removed = part.Removed };
            foreach (var field in part.Fields)
            {
                live.Add(field.Name, field.Text, field.Handle).Gaps = field.Gaps.Count > 0 ? [.. field.Gaps] : null;
                session._lastHandle = Math.Max(session._lastHandle, field.Handle);
            }

            session._parts[id] = live;
        }

        // A field stored without a handle (written before handles existed) gets one now, and the store all of them.
        foreach (var field in session._parts.Values.SelectMany(p => p.Fields ?? []).Where(f => f.Handle == 0))
        {
            field.Handle = ++session._lastHandle;
            observer?.Reset();
        }

        session._permissions.Load(image.Permissions);
        session._questions.Load(image.Questions);
        foreach (var child in image.Children)
        {
            session._children[child.Id] = child;
        }

        return session;
    }

    /// <summary>Told every change of this state (a copy kept elsewhere), if anyone is.</summary>
    public ILiveStateObserver? Observer { get; }

    /// <summary>The connection of the upstream's event stream this state is continuous with.</summary>
    public string? StreamId { get; set; }

    public object Gate { get; } = new();
    public SessionKey Key { get; }
    public string Upstream => Key.Upstream;
    public string SessionId => Key.SessionId;
    public string GroupName { get; }
    public long Epoch { get; private set; }
    public long Seq { get; private set; }
    public long LastActivity { get; set; }
    /// <summary>Set when the registry dropped this state: callers holding it must look it up again.</summary>
    public bool Evicted { get; set; }
    public JsonElement? Status { get; private set; }

    /// <summary>opencode's title of the session, when this epoch saw its info.</summary>
    public string? Title => _sessionInfo is { ValueKind: JsonValueKind.Object } info && info.TryGetProperty("title", out var title)
        && title.ValueKind == JsonValueKind.String ? title.GetString() : null;
    public bool Busy => IsBusyType(_statusType);

    private static bool IsBusyType(string? statusType) => statusType is "busy" or "retry";

    /// <summary>Whether a status as the history stores it (opencode's status object, as JSON) says the session runs.</summary>
    public static bool IsBusy(string statusEntry)
    {
        using var status = JsonDocument.Parse(statusEntry);
        return IsBusyType(StatusType(status.RootElement));
    }
    public ReplayLog Replay => _replay;

    /// <summary>
    /// Continuity is lost (the upstream stream broke): starts <paramref name="epoch"/>. Streamed texts are kept, with
    /// a gap at the end of every part that had not ended; everything else is forgotten (opencode's REST state is
    /// fresher). Emits <see cref="SessionEventTypes.EpochStarted"/>.
    /// </summary>
    public void BeginEpoch(long epoch, List<SessionEvent> output)
    {
        Observer?.Reset();
        Epoch = epoch;
        Seq = 0;
        _replay.Clear();
        _messages.Clear();
        _permissions.Clear();
        _questions.Clear();
        _children.Clear();
        _statusType = null;
        Status = null;
        _sessionInfo = null;
        _todos = null;
        List<string>? drop = null;
        foreach (var (partId, part) in _parts)
        {
            if (part.Removed || part.Fields is not { Count: > 0 })
            {
                (drop ??= []).Add(partId);
                continue;
            }

            if (!part.Ended)
            {
                foreach (var field in part.Fields)
                {
                    field.AddGap(field.Text.Length);
                }
            }

            part.JsonStale = true;
        }

        foreach (var partId in drop ?? [])
        {
            _parts.Remove(partId);
        }

        output.Add(Next(SessionEventTypes.EpochStarted, 0));
    }

    /// <summary>Applies one upstream event; appends what clients get (none, one, or a gap then a delta).</summary>
    public void Apply(UpstreamEvent e, List<SessionEvent> output)
    {
        switch (e.Kind)
        {
            case UpstreamEventKind.PartDelta:
                ApplyDelta(e.MessageId!, e.PartId!, e.Field!, e.Delta!, e.Size, output);
                return;
            case UpstreamEventKind.PartUpdated:
                output.Add(ApplyPartUpdated(e));
                return;
            case UpstreamEventKind.PartRemoved:
            {
                var part = Part(e.PartId!, e.MessageId ?? "");
                part.Removed = true;
                MarkPart(e.PartId!);
                output.Add(Next(SessionEventTypes.PartRemoved, e.Size, messageId: e.MessageId, partId: e.PartId));
                return;
            }
            case UpstreamEventKind.MessageUpdated:
                Message(e.MessageId!).Info = e.Payload;
                output.Add(Next(SessionEventTypes.MessageUpdated, e.Size, messageId: e.MessageId, info: e.Payload));
                return;
            case UpstreamEventKind.MessageRemoved:
                Message(e.MessageId!).Removed = true;
                output.Add(Next(SessionEventTypes.MessageRemoved, e.Size, messageId: e.MessageId));
                return;
            case UpstreamEventKind.Status:
            {
                var type = e.Payload.TryGetProperty("type", out var t) ? t.GetString() : null;
                // opencode repeats "busy" several times a turn; clients only need changes (a retry always changes).
                if (type == _statusType && type != "retry")
                {
                    return;
                }

                _statusType = type;
                Status = e.Payload;
                Observer?.StatusChanged();
                output.Add(Next(SessionEventTypes.Status, e.Size, status: e.Payload));
                return;
            }
            case UpstreamEventKind.Error:
                output.Add(Next(SessionEventTypes.Error, e.Size, error: e.Payload));
                return;
            case UpstreamEventKind.PermissionAsked or UpstreamEventKind.PermissionReplied or UpstreamEventKind.QuestionAsked
                or UpstreamEventKind.QuestionReplied or UpstreamEventKind.QuestionRejected:
                ApplyRequest(e, childSessionId: null, output);
                return;
            case UpstreamEventKind.TodoUpdated:
                _todos = e.Payload;
                Observer?.TodosChanged();
                output.Add(Next(SessionEventTypes.TodoUpdated, e.Size, todos: e.Payload));
                return;
            case UpstreamEventKind.SessionUpdated:
                _sessionInfo = e.Payload;
                Observer?.InfoChanged();
                output.Add(Next(SessionEventTypes.SessionUpdated, e.Size, info: e.Payload));
                return;
            case UpstreamEventKind.SessionDeleted:
                output.Add(Next(SessionEventTypes.SessionDeleted, e.Size));
                return;
        }
    }

    /// <summary>
    /// An event of a descendant session (a subagent's, any depth) that this session's watchers must see: what a run
    /// waits for (permission and question requests and their answers) becomes an event of this session with
    /// <see cref="SessionEvent.ChildSessionId"/>; the descendant's new title or status becomes <c>child.updated</c>.
    /// </summary>
    /// <param name="child">For session and status events: the descendant as it is now (its parent, title, status).</param>
    public void ApplyFromDescendant(UpstreamEvent e, string childSessionId, ChildSession? child, List<SessionEvent> output)
    {
        switch (e.Kind)
        {
            case UpstreamEventKind.PermissionAsked or UpstreamEventKind.PermissionReplied or UpstreamEventKind.QuestionAsked
                or UpstreamEventKind.QuestionReplied or UpstreamEventKind.QuestionRejected:
                ApplyRequest(e, childSessionId, output);
                return;
            case UpstreamEventKind.SessionUpdated or UpstreamEventKind.Status when child is not null:
                if (_children.TryGetValue(childSessionId, out var known) && known.ParentId == child.ParentId
                    && known.Title == child.Title && StatusType(known.Status) == StatusType(child.Status))
                {
                    return; // opencode re-sends the info for every change of cost and tokens: only these three matter here
                }

                _children[childSessionId] = child;
                MarkChild(childSessionId);
                output.Add(Next(SessionEventTypes.ChildUpdated, e.Size, childSessionId: childSessionId, child: child));
                return;
        }
    }

    /// <summary>A descendant this session's watchers know of, if any.</summary>
    public ChildSession? ChildOf(string childSessionId) => _children.GetValueOrDefault(childSessionId);

    private void ApplyRequest(UpstreamEvent e, string? childSessionId, List<SessionEvent> output)
    {
        var id = e.RequestId!;
        switch (e.Kind)
        {
            case UpstreamEventKind.PermissionAsked:
                _permissions.Ask(id, e.Payload);
                MarkPermission(id);
                output.Add(Next(SessionEventTypes.PermissionAsked, e.Size, permission: e.Payload, childSessionId: childSessionId));
                return;
            case UpstreamEventKind.PermissionReplied:
                _permissions.Answer(id);
                MarkPermission(id);
                output.Add(Next(SessionEventTypes.PermissionReplied, e.Size, requestId: id, reply: e.Reply, childSessionId: childSessionId));
                return;
            case UpstreamEventKind.QuestionAsked:
                _questions.Ask(id, e.Payload);
                MarkQuestion(id);
                output.Add(Next(SessionEventTypes.QuestionAsked, e.Size, question: e.Payload, childSessionId: childSessionId));
                return;
            case UpstreamEventKind.QuestionReplied or UpstreamEventKind.QuestionRejected:
                _questions.Answer(id);
                MarkQuestion(id);
                var replied = e.Kind == UpstreamEventKind.QuestionReplied;
                output.Add(Next(replied ? SessionEventTypes.QuestionReplied : SessionEventTypes.QuestionRejected, e.Size,
                    question: QuestionAnswer(id, e.SessionId!, replied ? e.Payload : null), childSessionId: childSessionId));
                return;
        }
    }

    /// <summary><c>{id, sessionID, answers?}</c>: what <c>question.replied</c> and <c>question.rejected</c> carry.</summary>
    private static JsonElement QuestionAnswer(string requestId, string sessionId, JsonElement? answers)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("id", requestId);
            writer.WriteString("sessionID", sessionId);
            if (answers is { } value)
            {
                writer.WritePropertyName("answers");
                value.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    private static string? StatusType(JsonElement status) =>
        status.ValueKind == JsonValueKind.Object && status.TryGetProperty("type", out var type) ? type.GetString() : null;

    private void ApplyDelta(string messageId, string partId, string fieldName, string delta, int size, List<SessionEvent> output)
    {
        var part = Part(partId, messageId);
        var field = part.Find(fieldName);
        if (field is null)
        {
            // The field was never announced here: the text before this delta is unknown.
            field = part.Add(fieldName, "", ++_lastHandle);
            field.AddGap(0);
            MarkPart(partId);
            MarkField(partId, fieldName);
            output.Add(Next(SessionEventTypes.PartGap, 0, messageId: messageId, partId: partId, field: fieldName, offset: 0, handle: field.Handle));
        }

        var offset = field.Text.Length;
        field.Text.Append(delta);
        MarkAppend(partId, fieldName, delta);
        output.Add(Next(SessionEventTypes.PartDelta, size, messageId: messageId, partId: partId, field: fieldName, offset: offset, delta: delta, handle: field.Handle));
    }

    private SessionEvent ApplyPartUpdated(UpstreamEvent e)
    {
        var partJson = e.Payload;
        if (PartFields.IsTool(partJson))
        {
            return ApplyToolPartUpdated(e);
        }

        var partId = e.PartId!;
        var isNew = !_parts.ContainsKey(partId);
        var part = Part(partId, e.MessageId!);
        part.MessageId = e.MessageId!;
        part.Removed = false;
        var hasText = partJson.TryGetProperty("text", out var textElement) && textElement.ValueKind == JsonValueKind.String;
        var withoutText = hasText ? WithoutMember(partJson, "text") : partJson;
        var metaChanged = isNew || part.Json is null || part.JsonStale || !JsonElement.DeepEquals(part.Json.Value, withoutText);
        part.Json = withoutText;
        part.JsonStale = false;
        MarkPart(partId);
        if (!hasText)
        {
            return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson);
        }

        var upstreamText = textElement.GetString()!;
        var field = part.Find("text");
        if (field is null)
        {
            var added = part.Add("text", upstreamText, ++_lastHandle);
            MarkField(partId, "text");
            return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson, handle: added.Handle);
        }

        var text = field.Text;
        // Older releases: the full part plus the appended text. Send only the delta when it lines up.
        if (e.Delta is { Length: > 0 } delta && !metaChanged && field.Gaps is null
            && upstreamText.Length == text.Length + delta.Length
            && upstreamText.EndsWith(delta, StringComparison.Ordinal) && StartsWith(upstreamText, text))
        {
            var offset = text.Length;
            text.Append(delta);
            MarkAppend(partId, "text", delta);
            return Next(SessionEventTypes.PartDelta, e.Size, messageId: e.MessageId, partId: partId, field: "text", offset: offset, delta: delta, handle: field.Handle);
        }

        if (part.Ended)
        {
            if (field.Gaps is null && Equals(text, upstreamText))
            {
                return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: withoutText);
            }
        }
        else if (field.Gaps is not null ? upstreamText.Length == 0 : StartsWith(text, upstreamText))
        {
            // An in-flight copy (opencode shows "" until the part ends) or a stale one: clients keep the text they have.
            return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: withoutText);
        }

        // opencode's text: it restates the field, and whatever gaps it had are closed.
        text.Clear().Append(upstreamText);
        field.Gaps = null;
        MarkField(partId, "text");
        return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson, handle: field.Handle);
    }

    /// <summary>
    /// A tool part: opencode sends it whole on every update, its output growing. Its streamed fields
    /// (<see cref="StreamedFields.Tool"/>) are kept like text: an update that only extends one of them (nothing else of
    /// the part changed) carries that delta besides the part, for compact connections; any other update names the
    /// fields whose value is text the clients hold already (<see cref="SessionEvent.Copies"/>), so compact connections
    /// get the part without them (the completed part repeats the streamed output as <c>state.output</c>).
    /// </summary>
    private SessionEvent ApplyToolPartUpdated(UpstreamEvent e)
    {
        var partJson = e.Payload;
        var partId = e.PartId!;
        var part = Part(partId, e.MessageId!);
        part.MessageId = e.MessageId!;
        part.Removed = false;
        var withoutFields = PartFields.Without(partJson, StreamedFields.Tool);
        var metaChanged = part.Json is null || part.JsonStale || !JsonElement.DeepEquals(part.Json.Value, withoutFields);
        part.Json = withoutFields;
        part.JsonStale = false;
        MarkPart(partId);

        // Copies name text the clients hold before this update: all are found before any field changes.
        var values = new string?[StreamedFields.Tool.Count];
        Dictionary<string, int>? copies = null;
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = PartFields.GetString(partJson, StreamedFields.Tool[i]);
            if (values[i] is { } value && HeldHandleOf(part, value) is { } held)
            {
                (copies ??= new(StringComparer.Ordinal))[StreamedFields.Tool[i]] = held;
            }
        }

        var extensions = 0;
        var rewritten = metaChanged;
        (LiveField Field, int Offset, string Delta)? extension = null;
        for (var i = 0; i < values.Length; i++)
        {
            var path = StreamedFields.Tool[i];
            var value = values[i];
            var field = part.Find(path);
            if (value is null)
            {
                if (field is not null)
                {
                    // (the shared store keeps a field's text apart: a field gone is written with the whole state)
                    part.Remove(field);
                    Observer?.Reset();
                    rewritten = true;
                }

                continue;
            }

            if (field is null)
            {
                part.Add(path, value, ++_lastHandle);
                MarkField(partId, path);
                rewritten = true;
            }
            else if (field.Gaps is null && Equals(field.Text, value))
            {
                // unchanged
            }
            else if (field.Gaps is null && StartsWith(value, field.Text))
            {
                extensions++;
                var offset = field.Text.Length;
                var delta = value[offset..];
                extension = (field, offset, delta);
                field.Text.Append(delta);
                MarkAppend(partId, path, delta);
            }
            else
            {
                field.Text.Clear().Append(value);
                field.Gaps = null;
                MarkField(partId, path);
                rewritten = true;
            }
        }

        if (!rewritten && extensions == 1 && extension is var (extended, at, appended))
        {
            return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson,
                field: extended.Name, offset: at, delta: appended, handle: extended.Handle);
        }

        var handles = part.Fields is { Count: > 0 } fields ? fields.ToDictionary(f => f.Name, f => f.Handle, StringComparer.Ordinal) : null;
        return Next(SessionEventTypes.PartUpdated, e.Size, messageId: e.MessageId, partId: partId, part: partJson,
            handles: handles, copies: copies);
    }

    /// <summary>The handle of a field of the part whose text (without gaps) is <paramref name="value"/>, before this update.</summary>
    private static int? HeldHandleOf(LivePart part, string value)
    {
        foreach (var field in part.Fields ?? [])
        {
            if (field.Gaps is null && Equals(field.Text, value))
            {
                return field.Handle;
            }
        }

        return null;
    }

    private SessionEvent Next(string type, int size, string? messageId = null, string? partId = null, string? field = null,
        int? offset = null, string? delta = null, JsonElement? part = null, JsonElement? info = null, JsonElement? status = null,
        JsonElement? error = null, JsonElement? permission = null, string? requestId = null, string? reply = null,
        JsonElement? todos = null, int? handle = null, JsonElement? question = null, string? childSessionId = null,
        ChildSession? child = null, IReadOnlyDictionary<string, int>? handles = null, IReadOnlyDictionary<string, int>? copies = null)
    {
        var evt = new SessionEvent
        {
            Upstream = Upstream, SessionId = SessionId, Epoch = Epoch, Seq = ++Seq, Type = type,
            MessageId = messageId, PartId = partId, Field = field, Offset = offset, Delta = delta, Part = part, Info = info,
            Status = status, Error = error, Permission = permission, RequestId = requestId, Reply = reply, Todos = todos,
            Handle = handle, Question = question, ChildSessionId = childSessionId, Child = child, Handles = handles, Copies = copies,
        };
        _replay.Append(evt, size + 64);
        return evt;
    }

    /// <summary>The role of a message this epoch saw (<c>user</c>/<c>assistant</c>), if it saw one.</summary>
    public string? RoleOf(string messageId) =>
        _messages.TryGetValue(messageId, out var message) && message.Info is { } info && info.TryGetProperty("role", out var role)
            ? role.GetString()
            : null;

    /// <summary>An immutable copy of what this epoch knows, consistent with <see cref="Seq"/>, for snapshots.</summary>
    public LiveSessionImage CreateImage()
    {
        var messages = new Dictionary<string, LiveMessageImage>(_messages.Count, StringComparer.Ordinal);
        foreach (var (id, message) in _messages)
        {
            messages[id] = ImageOf(message);
        }

        var parts = new Dictionary<string, LivePartImage>(_parts.Count, StringComparer.Ordinal);
        foreach (var (id, part) in _parts)
        {
            parts[id] = ImageOf(part);
        }

        return new LiveSessionImage(Key, Epoch, Seq, _sessionInfo, Status, _todos, messages, parts, _permissions.ToImage())
        {
            StreamId = StreamId, Questions = _questions.ToImage(), Children = [.. _children.Values],
        };
    }

    /// <summary>opencode's info of the session, when this epoch saw it.</summary>
    public JsonElement? SessionInfo => _sessionInfo;

    /// <summary>The session's todo list, when this epoch saw it.</summary>
    public JsonElement? Todos => _todos;

    /// <summary>One message as an image (for a copy of the state).</summary>
    public LiveMessageImage MessageImage(string id) => ImageOf(_messages[id]);

    /// <summary>One part as an image, its streamed fields with their text (for a copy of the state).</summary>
    public LivePartImage PartImage(string id) => ImageOf(_parts[id]);

    /// <summary>One streamed field of a part: its text, gaps and handle (for a copy of the state).</summary>
    public LiveFieldImage FieldImage(string partId, string field) =>
        _parts[partId].Find(field) is { } f ? new LiveFieldImage(f.Name, f.Text.ToString(), f.Gaps?.ToArray() ?? []) { Handle = f.Handle }
        : throw new KeyNotFoundException($"part {partId} has no field {field}");

    /// <summary>A permission request as this epoch knows it: pending (the request), answered, or neither.</summary>
    public (JsonElement? Pending, bool Answered) PermissionState(string id) => _permissions.StateOf(id);

    /// <summary>A question as this epoch knows it: pending (the question), answered, or neither.</summary>
    public (JsonElement? Pending, bool Answered) QuestionState(string id) => _questions.StateOf(id);

    /// <summary>A descendant this epoch knows.</summary>
    public ChildSession Child(string id) => _children[id];

    private void MarkPart(string id) => Observer?.PartChanged(id);

    private void MarkField(string partId, string field) => Observer?.FieldReplaced(partId, field);

    private void MarkAppend(string partId, string field, string text) => Observer?.FieldAppended(partId, field, text);

    private void MarkPermission(string id) => Observer?.PermissionChanged(id);

    private void MarkQuestion(string id) => Observer?.QuestionChanged(id);

    private void MarkChild(string id) => Observer?.ChildChanged(id);

    private LiveMessage Message(string id)
    {
        Observer?.MessageChanged(id);

        if (!_messages.TryGetValue(id, out var message))
        {
            message = new LiveMessage();
            _messages[id] = message;
        }

        return message;
    }

    private LivePart Part(string id, string messageId)
    {
        if (!_parts.TryGetValue(id, out var part))
        {
            part = new LivePart(messageId);
            _parts[id] = part;
        }

        return part;
    }

    private static LiveMessageImage ImageOf(LiveMessage message) => new(message.Info, message.Removed);

    private static LivePartImage ImageOf(LivePart part) =>
        new(part.MessageId, part.Json, part.JsonStale, part.Removed,
            part.Fields?.Select(f => new LiveFieldImage(f.Name, f.Text.ToString(), f.Gaps?.ToArray() ?? []) { Handle = f.Handle }).ToArray() ?? []);

    private static bool Equals(StringBuilder builder, string text) => builder.Length == text.Length && builder.Equals(text.AsSpan());

    private static bool StartsWith(string text, StringBuilder prefix) =>
        prefix.Length <= text.Length && prefix.Equals(text.AsSpan(0, prefix.Length));

    private static bool StartsWith(StringBuilder text, string prefix)
    {
        if (prefix.Length > text.Length)
        {
            return false;
        }

        var offset = 0;
        foreach (var chunk in text.GetChunks())
        {
            var n = Math.Min(chunk.Length, prefix.Length - offset);
            if (!chunk.Span[..n].SequenceEqual(prefix.AsSpan(offset, n)))
            {
                return false;
            }

            offset += n;
            if (offset == prefix.Length)
            {
                return true;
            }
        }

        return offset == prefix.Length;
    }

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

    /// <summary>Requests a run waits for (permissions or questions): the pending ones, and the ids answered this epoch.</summary>
    private sealed class PendingRequests
    {
        private readonly Dictionary<string, JsonElement> _pending = new(StringComparer.Ordinal);
        private readonly HashSet<string> _answered = new(StringComparer.Ordinal);

        public void Ask(string id, JsonElement request)
        {
            _pending[id] = request;
            _answered.Remove(id);
        }

        public void Answer(string id)
        {
            _pending.Remove(id);
            _answered.Add(id);
        }

        public void Clear()
        {
            _pending.Clear();
            _answered.Clear();
        }

        public void Load(LiveRequestsImage image)
        {
            foreach (var (id, request) in image.Pending)
            {
                _pending[id] = request;
            }

            _answered.UnionWith(image.Answered);
        }

        public LiveRequestsImage ToImage() => new(new Dictionary<string, JsonElement>(_pending, StringComparer.Ordinal),
            new HashSet<string>(_answered, StringComparer.Ordinal));

        public (JsonElement? Pending, bool Answered) StateOf(string id) =>
            (_pending.TryGetValue(id, out var request) ? request : null, _answered.Contains(id));
    }

    private sealed class LiveMessage
    {
        public JsonElement? Info { get; set; }
        public bool Removed { get; set; }
    }

    private sealed class LivePart(string messageId)
    {
        public string MessageId { get; set; } = messageId;
        /// <summary>The latest part object without its streamed fields.</summary>
        public JsonElement? Json { get; set; }
        /// <summary>The object is from an earlier epoch: opencode's stored part is fresher.</summary>
        public bool JsonStale { get; set; }
        public bool Removed { get; set; }
        public List<LiveField>? Fields { get; private set; }

        /// <summary>
        /// The part can receive no more deltas: opencode marks a streamed part with <c>time.start</c> and sets
        /// <c>time.end</c> when it ends; a part without <c>time</c> (a user's text) arrived whole.
        /// </summary>
        public bool Ended => Json is { } json && !(json.TryGetProperty("time", out var time) && time.ValueKind == JsonValueKind.Object
            && time.TryGetProperty("start", out _) && !time.TryGetProperty("end", out _));

        public LiveField? Find(string name) => Fields?.Find(f => f.Name == name);

        public LiveField Add(string name, string text, int handle)
        {
            var field = new LiveField(name, text, handle);
            (Fields ??= []).Add(field);
            return field;
        }

        public void Remove(LiveField field) => Fields?.Remove(field);
    }

    private sealed class LiveField(string name, string text, int handle)
    {
        public string Name { get; } = name;
        public int Handle { get; set; } = handle;
        public StringBuilder Text { get; } = new(text);
        /// <summary>Sorted offsets where the text stops being continuous; null when it is continuous.</summary>
        public List<int>? Gaps { get; set; }

        public void AddGap(int offset)
        {
            Gaps ??= [];
            if (Gaps.Count == 0 || Gaps[^1] < offset)
            {
                Gaps.Add(offset);
            }
        }
    }
}
