using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Chat;

/// <summary>
/// Turns one session's events into the <c>/api/chat</c> SSE stream: assistant text and reasoning as positioned deltas,
/// gap marks, tool states, permission requests and questions (the session's and its descendants') with their answers,
/// errors, and <c>done</c> when the session goes idle.
/// </summary>
/// <remarks>
/// Ids: an item made from one event carries that event's position <c>{epoch}-{seq}</c>; a restatement (the latest
/// answer from a snapshot at <c>E-S</c>) carries <c>E-S</c> on its last item only, so a client cut in the middle of it
/// resumes from before it and gets it again. Ids only ever grow: a position not after the last id sent is not sent.
/// Resuming from any id sent therefore yields exactly what followed it.
/// </remarks>
internal sealed class ChatStream(SessionWatch watch, SessionWatches watches)
{
    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(15);
    private readonly Dictionary<string, string> _roles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _partTypes = new(StringComparer.Ordinal);
    private readonly string _sessionId = watch.SessionId;
    // What this stream's client holds: the position of the last event or snapshot translated.
    private StreamPosition _position = new(0, 0);
    // The last id sent (or resumed from): ids must grow past it.
    private StreamPosition _lastId = new(0, 0);
    // The session went idle: the stream ends.
    private bool _idle;

    /// <summary>
    /// The stream after <paramref name="from"/> (a <c>Last-Event-ID</c>): the events after it when the history still
    /// holds them, else the latest answer restated from a snapshot. Without a position: from
    /// <paramref name="subscribedAt"/>, the session's position when the subscription was added.
    /// </summary>
    public async IAsyncEnumerable<SseItem<object>> ReadAsync(StreamPosition? from, StreamPosition subscribedAt,
        [EnumeratorCancellation] CancellationToken ct)
    {
        yield return new SseItem<object>(new ChatSessionData(_sessionId, watch.Key.Upstream), ChatEvents.Session);
        List<SseItem<object>> first = [];
        if (from is null)
        {
            _position = subscribedAt;
        }
        else
        {
            _lastId = from;
            var missed = await watches.ReadAfterAsync(watch, from, ct);
            if (missed is not null)
            {
                _position = from;
                foreach (var evt in missed)
                {
                    first.AddRange(Translate(evt));
                    if (_idle)
                    {
                        break;
                    }
                }
            }
            else
            {
                first.AddRange(await RestateAsync(await watches.SnapshotAsync(watch, ct), ct));
            }
        }

        foreach (var item in first)
        {
            yield return item;
        }

        while (!_idle)
        {
            var next = await watch.ReadAsync(PingInterval, ct);

            if (next is null)
            {
                yield return new SseItem<object>(new { }, ChatEvents.Ping);
                continue;
            }

            List<SseItem<object>> items;
            if (next is SessionSnapshot pushed)
            {
                items = After(pushed.Epoch, pushed.Seq) ? await RestateAsync(pushed, ct) : [];
            }
            else
            {
                var evt = (SessionEvent)next;
                // Another epoch: continuity was lost upstream; restate the answer from a fresh snapshot, then go on.
                items = evt.Epoch > _position.Epoch ? await RestateAsync(await watches.SnapshotAsync(watch, ct), ct)
                    : Translate(evt);
            }

            foreach (var item in items)
            {
                yield return item;
            }
        }
    }

    private bool After(long epoch, long seq) => epoch > _position.Epoch || (epoch == _position.Epoch && seq > _position.Seq);

    private List<SseItem<object>> Translate(SessionEvent evt)
    {
        var items = new List<SseItem<object>>(1);
        if (evt.Epoch != _position.Epoch || evt.Seq <= _position.Seq)
        {
            return items;
        }

        _position = new StreamPosition(evt.Epoch, evt.Seq);
        switch (evt.Type)
        {
            case SessionEventTypes.MessageUpdated:
                if (evt.Info is { } info && info.TryGetProperty("role", out var role))
                {
                    _roles[evt.MessageId!] = role.GetString() ?? "";
                }

                break;
            case SessionEventTypes.PartDelta when IsAssistant(evt.MessageId!) && evt.Field == "text":
                if (TextType(evt.PartId!) is { } deltaType)
                {
                    items.Add(Item(ChatEvents.Delta, new ChatDeltaData(_sessionId, evt.MessageId!, evt.PartId!, deltaType, evt.Offset!.Value, evt.Delta!)));
                }

                break;
            case SessionEventTypes.PartGap when IsAssistant(evt.MessageId!) && evt.Field == "text":
                if (TextType(evt.PartId!) is { } gapType)
                {
                    items.Add(Item(ChatEvents.Gap, new ChatGapData(_sessionId, evt.MessageId!, evt.PartId!, gapType, evt.Offset!.Value)));
                }

                break;
            case SessionEventTypes.PartUpdated when IsAssistant(evt.MessageId!):
                if (FromPart(evt.MessageId!, evt.PartId!, evt.Part!.Value, gaps: []) is { } updated)
                {
                    items.Add(updated);
                }

                break;
            case SessionEventTypes.PermissionAsked when evt.Permission is { } permission && String(permission, "id") is { } permissionId:
                items.Add(Item(ChatEvents.Permission, new ChatPermissionData(_sessionId, permissionId, permission, evt.ChildSessionId)));
                break;
            case SessionEventTypes.PermissionReplied:
                items.Add(Item(ChatEvents.PermissionReplied, new ChatPermissionRepliedData(_sessionId, evt.RequestId!, evt.Reply, evt.ChildSessionId)));
                break;
            case SessionEventTypes.QuestionAsked when evt.Question is { } question && String(question, "id") is { } questionId:
                items.Add(Item(ChatEvents.Question, new ChatQuestionData(_sessionId, questionId, question, evt.ChildSessionId)));
                break;
            case SessionEventTypes.QuestionReplied when evt.Question is { } replied && String(replied, "id") is { } repliedId:
                items.Add(Item(ChatEvents.QuestionReplied, new ChatQuestionRepliedData(_sessionId, repliedId,
                    replied.TryGetProperty("answers", out var answers) ? answers : null, evt.ChildSessionId)));
                break;
            case SessionEventTypes.QuestionRejected when evt.Question is { } rejected && String(rejected, "id") is { } rejectedId:
                items.Add(Item(ChatEvents.QuestionRejected, new ChatQuestionRejectedData(_sessionId, rejectedId, evt.ChildSessionId)));
                break;
            case SessionEventTypes.Error:
                var error = evt.Error ?? default;
                items.Add(Item(ChatEvents.Error, new ChatErrorData(_sessionId, ErrorName(error), ErrorMessage(error))));
                break;
            case SessionEventTypes.Status:
                _idle = evt.Status?.GetProperty("type").GetString() == "idle";
                if (_idle)
                {
                    items.Add(Item(ChatEvents.Done, new ChatDoneData(_sessionId)));
                }

                break;
        }

        return items;
    }

    /// <summary>
    /// The latest answer (assistant messages after the last user message, paged back past the snapshot's window when
    /// it began before it) restated from a snapshot, then what waits for an answer in the session and its descendants.
    /// </summary>
    private async Task<List<SseItem<object>>> RestateAsync(SessionSnapshot snapshot, CancellationToken ct)
    {
        _position = new StreamPosition(snapshot.Epoch, snapshot.Seq);
        var answer = await watches.LatestAnswerAsync(watch.Client, snapshot, ct);
        var items = new List<SseItem<object>>();
        foreach (var message in snapshot.Messages.Concat(answer))
        {
            _roles[message.Info.GetProperty("id").GetString()!] = String(message.Info, "role") ?? "";
        }

        foreach (var message in answer)
        {
            var messageId = message.Info.GetProperty("id").GetString()!;
            foreach (var part in message.Parts)
            {
                var partId = part.GetProperty("id").GetString()!;
                var gaps = snapshot.Gaps is { } all && all.TryGetValue(partId, out var fields) && fields.TryGetValue("text", out var offsets)
                    ? offsets : [];
                if (FromPart(messageId, partId, part, gaps, withId: false) is { } item)
                {
                    items.Add(item);
                }
            }
        }

        foreach (var permission in snapshot.Permissions)
        {
            items.Add(new SseItem<object>(new ChatPermissionData(_sessionId, String(permission, "id")!, permission, DescendantOf(permission)),
                ChatEvents.Permission));
        }

        foreach (var question in snapshot.Questions)
        {
            items.Add(new SseItem<object>(new ChatQuestionData(_sessionId, String(question, "id")!, question, DescendantOf(question)),
                ChatEvents.Question));
        }

        _idle = snapshot.Status.TryGetProperty("type", out var status) && status.GetString() == "idle";
        if (_idle)
        {
            items.Add(new SseItem<object>(new ChatDoneData(_sessionId), ChatEvents.Done));
        }

        // Only the last item carries the snapshot's position: resuming from it means holding all of it.
        if (items.Count > 0 && Id() is { } id)
        {
            items[^1] = items[^1] with { EventId = id };
        }

        return items;
    }

    /// <summary>The descendant session that raised a request, or null for the session's own.</summary>
    private string? DescendantOf(JsonElement request) => String(request, "sessionID") is { } asker && asker != _sessionId ? asker : null;

    /// <param name="gaps">For text and reasoning: the gaps of the restated text (a restatement replaces them).</param>
    private SseItem<object>? FromPart(string messageId, string partId, JsonElement part, IReadOnlyList<int> gaps, bool withId = true)
    {
        var type = part.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        _partTypes[partId] = type;
        object? data = null;
        string? name = null;
        if (type is "text" or "reasoning")
        {
            // A full text (the part's first or final state) restates the part from offset 0, gaps included.
            if (part.TryGetProperty("text", out var text) && text.GetString() is { } value)
            {
                (name, data) = (ChatEvents.Delta, new ChatDeltaData(_sessionId, messageId, partId, type, 0, value, gaps));
            }
        }
        else if (type == "tool")
        {
            var state = part.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
            (name, data) = (ChatEvents.Tool, new ChatToolData(_sessionId, messageId, partId,
                String(part, "tool"), String(part, "callID"), String(state, "status"), String(state, "title"),
                state.ValueKind == JsonValueKind.Object && state.TryGetProperty("input", out var input) ? input : null,
                String(state, "output"), String(state, "error")));
        }

        return data is null ? null : withId ? Item(name!, data) : new SseItem<object>(data, name);
    }

    private string? TextType(string partId)
    {
        var type = _partTypes.GetValueOrDefault(partId, "text");
        return type is "text" or "reasoning" ? type : null;
    }

    // Only assistant output is streamed; a message whose info this stream never saw is an assistant's (users' text
    // arrives whole, after its message's info).
    private bool IsAssistant(string messageId) => _roles.GetValueOrDefault(messageId, "assistant") == "assistant";

    private SseItem<object> Item(string type, object data) => new(data, type) { EventId = Id() };

    /// <summary>The current position as an id, when it is past every id sent so far.</summary>
    private string? Id()
    {
        if (_position.Epoch < _lastId.Epoch || (_position.Epoch == _lastId.Epoch && _position.Seq <= _lastId.Seq))
        {
            return null;
        }

        _lastId = _position;
        return $"{_position.Epoch}-{_position.Seq}";
    }

    private static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string ErrorName(JsonElement error) => String(error, "name") ?? "session_error";

    private static string ErrorMessage(JsonElement error) =>
        error.ValueKind == JsonValueKind.Object && error.TryGetProperty("data", out var data) ? String(data, "message") ?? "" : "";
}
