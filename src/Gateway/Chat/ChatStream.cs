using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Fanout;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Chat;

/// <summary>
/// Turns one session's events into the <c>/api/chat</c> SSE stream: assistant text and reasoning as positioned deltas,
/// tool states, permission requests, errors, and <c>done</c> when the session goes idle.
/// </summary>
internal sealed class ChatStream(
    OpencodeClient client,
    string sessionId,
    SessionSubscriptions.Subscription subscription,
    LiveSessionRegistry live,
    SnapshotBuilder snapshots,
    TimeProvider time)
{
    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(15);
    private readonly Dictionary<string, string> _roles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _partTypes = new(StringComparer.Ordinal);
    private long _epoch;
    private long _seq;

    private string Id => $"{_epoch}-{_seq}";

    /// <summary>
    /// The stream from a position: the events after it when the replay log still has them, else the current text of
    /// the latest answer as deltas from offset 0. Without a position: from <paramref name="subscribedAt"/>, the
    /// session's position when the subscription was added.
    /// </summary>
    public async IAsyncEnumerable<SseItem<object>> ReadAsync(StreamPosition? from, StreamPosition subscribedAt,
        [EnumeratorCancellation] CancellationToken ct)
    {
        List<SseItem<object>> first = [];
        var idle = false;
        (_epoch, _seq) = (subscribedAt.Epoch, subscribedAt.Seq);
        var recovered = from is not null && live.Use(client.UpstreamId, sessionId, session =>
        {
            _epoch = session.Epoch;
            _seq = session.Seq;
            if (from.Epoch != session.Epoch || !session.Replay.TryGetAfter(from.Seq, session.Seq, out var missed))
            {
                return false;
            }

            _seq = from.Seq;
            foreach (var evt in missed)
            {
                first.AddRange(Translate(evt, ref idle));
            }

            return true;
        });

        if (from is null)
        {
            (_epoch, _seq) = (subscribedAt.Epoch, subscribedAt.Seq);
        }

        yield return Item(ChatEvents.Session, new ChatSessionData(sessionId, client.UpstreamId));
        if (from is not null && !recovered)
        {
            var snapshot = await snapshots.BuildAsync(client, sessionId, metadata: null, ct);
            first.AddRange(FromSnapshot(snapshot, ref idle));
        }

        foreach (var item in first)
        {
            yield return item;
        }

        if (idle)
        {
            yield return Item(ChatEvents.Done, new ChatDoneData(sessionId));
            yield break;
        }

        while (true)
        {
            using var pingTimer = new CancellationTokenSource(PingInterval, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, pingTimer.Token);
            object? next;
            try
            {
                next = await subscription.Reader.ReadAsync(linked.Token);
            }
            catch (OperationCanceledException) when (pingTimer.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                next = null;
            }

            if (next is null)
            {
                yield return new SseItem<object>(new { }, ChatEvents.Ping);
                continue;
            }

            IEnumerable<SseItem<object>> items;
            if (next is SessionSnapshot pushed)
            {
                items = pushed.Epoch > _epoch || (pushed.Epoch == _epoch && pushed.Seq > _seq) ? FromSnapshot(pushed, ref idle) : [];
            }
            else
            {
                var evt = (SessionEvent)next;
                if (evt.Epoch != _epoch)
                {
                    // Continuity lost upstream: restate the answer from a fresh snapshot, then go on.
                    var snapshot = await snapshots.BuildAsync(client, sessionId, metadata: null, ct);
                    items = FromSnapshot(snapshot, ref idle);
                }
                else
                {
                    items = Translate(evt, ref idle);
                }
            }

            foreach (var item in items)
            {
                yield return item;
            }

            if (idle)
            {
                yield return Item(ChatEvents.Done, new ChatDoneData(sessionId));
                yield break;
            }
        }
    }

    private List<SseItem<object>> Translate(SessionEvent evt, ref bool idle)
    {
        var items = new List<SseItem<object>>(1);
        if (evt.Epoch != _epoch || evt.Seq <= _seq)
        {
            return items;
        }

        _seq = evt.Seq;
        switch (evt.Type)
        {
            case SessionEventTypes.MessageUpdated:
                if (evt.Info is { } info && info.TryGetProperty("role", out var role))
                {
                    _roles[evt.MessageId!] = role.GetString() ?? "";
                }

                break;
            case SessionEventTypes.PartDelta when IsAssistant(evt.MessageId!):
                var type = _partTypes.GetValueOrDefault(evt.PartId!, "text");
                if (evt.Field == "text" && type is "text" or "reasoning")
                {
                    items.Add(Item(ChatEvents.Delta, new ChatDeltaData(sessionId, evt.MessageId!, evt.PartId!, type, evt.Offset!.Value, evt.Delta!)));
                }

                break;
            case SessionEventTypes.PartUpdated when IsAssistant(evt.MessageId!):
                items.AddRange(FromPart(evt.MessageId!, evt.PartId!, evt.Part!.Value));
                break;
            case SessionEventTypes.PermissionAsked:
                var request = evt.Permission!.Value;
                items.Add(Item(ChatEvents.Permission, new ChatPermissionData(sessionId, request.GetProperty("id").GetString()!, request)));
                break;
            case SessionEventTypes.Error:
                var error = evt.Error ?? default;
                items.Add(Item(ChatEvents.Error, new ChatErrorData(sessionId, ErrorName(error), ErrorMessage(error))));
                break;
            case SessionEventTypes.Status:
                idle = evt.Status?.GetProperty("type").GetString() == "idle";
                break;
        }

        return items;
    }

    /// <summary>The latest answer (assistant messages after the last user message) restated from a snapshot.</summary>
    private List<SseItem<object>> FromSnapshot(SessionSnapshot snapshot, ref bool idle)
    {
        _epoch = snapshot.Epoch;
        _seq = snapshot.Seq;
        var items = new List<SseItem<object>>();
        var lastUser = -1;
        for (var i = 0; i < snapshot.Messages.Count; i++)
        {
            var role = snapshot.Messages[i].Info.TryGetProperty("role", out var r) ? r.GetString() ?? "" : "";
            _roles[snapshot.Messages[i].Info.GetProperty("id").GetString()!] = role;
            if (role == "user")
            {
                lastUser = i;
            }
        }

        foreach (var message in snapshot.Messages.Skip(lastUser + 1))
        {
            var messageId = message.Info.GetProperty("id").GetString()!;
            foreach (var part in message.Parts)
            {
                items.AddRange(FromPart(messageId, part.GetProperty("id").GetString()!, part));
            }
        }

        idle = snapshot.Status.TryGetProperty("type", out var status) && status.GetString() == "idle";
        return items;
    }

    private IEnumerable<SseItem<object>> FromPart(string messageId, string partId, JsonElement part)
    {
        var type = part.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        _partTypes[partId] = type;
        if (type is "text" or "reasoning")
        {
            // A full text (the part's first or final state) restates the part from offset 0.
            if (part.TryGetProperty("text", out var text) && text.GetString() is { } value)
            {
                yield return Item(ChatEvents.Delta, new ChatDeltaData(sessionId, messageId, partId, type, 0, value));
            }
        }
        else if (type == "tool")
        {
            var state = part.TryGetProperty("state", out var s) && s.ValueKind == JsonValueKind.Object ? s : default;
            yield return Item(ChatEvents.Tool, new ChatToolData(sessionId, messageId, partId,
                String(part, "tool"), String(part, "callID"), String(state, "status"), String(state, "title"),
                state.ValueKind == JsonValueKind.Object && state.TryGetProperty("input", out var input) ? input : null,
                String(state, "output"), String(state, "error")));
        }
    }

    private bool IsAssistant(string messageId)
    {
        if (!_roles.TryGetValue(messageId, out var role))
        {
            role = live.Use(client.UpstreamId, sessionId, s => s.RoleOf(messageId)) ?? "assistant";
            _roles[messageId] = role;
        }

        return role == "assistant";
    }

    private SseItem<object> Item(string type, object data) => new(data, type) { EventId = Id };

    private static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string ErrorName(JsonElement error) => String(error, "name") ?? "session_error";

    private static string ErrorMessage(JsonElement error) =>
        error.ValueKind == JsonValueKind.Object && error.TryGetProperty("data", out var data) ? String(data, "message") ?? "" : "";
}
