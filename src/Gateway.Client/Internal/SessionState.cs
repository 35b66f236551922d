using System.Collections.Immutable;
using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client.Internal;

/// <summary>What the client must send next: a <c>Join</c> with this <c>since</c> (null: for a snapshot).</summary>
internal readonly record struct RejoinAction(StreamPosition? Since, RejoinReason Reason);

/// <summary>
/// The client rules of one watched session (README, "Client rules: seq, epoch, offset, gaps"), without I/O: applies
/// join results, snapshots, events and compact deltas to an immutable <see cref="SessionView"/>, drops duplicates,
/// detects gaps and epoch changes, and buffers what arrives while a join is in flight. When it needs a (re)join it
/// returns a <see cref="RejoinAction"/>; the caller sends the <c>Join</c> and hands its result to
/// <see cref="CompleteJoin"/> (or calls <see cref="FailJoin"/>). Every item it handles is reported, in order, to the
/// update sink. Not thread-safe: the caller serialises calls.
/// </summary>
internal sealed class SessionState
{
    private static readonly string[] StreamedFieldPaths = [StreamedFields.Text, .. StreamedFields.Tool];
    private static readonly ImmutableDictionary<string, IReadOnlyList<int>> NoGaps = ImmutableDictionary.Create<string, IReadOnlyList<int>>(StringComparer.Ordinal);
    private static readonly ImmutableDictionary<string, string> NoFields = ImmutableDictionary.Create<string, string>(StringComparer.Ordinal);

    private readonly bool _positionOnly;
    private readonly Action<SessionUpdate> _updates;
    private SessionView _view;
    private bool _joining;
    private List<Buffered> _buffer = [];
    // The delta whose offset was past the text last time: the same one again means since cannot repair it.
    private StreamPosition? _lastDeltaGap;

    /// <param name="positionOnly">Keep only the position (epoch, seq): rules 1–3, 5, 6 and 8's routing, no content.</param>
    /// <param name="resumeFrom">A view held before (another connection's): the first join asks for what came after it.</param>
    public SessionState(string sessionId, bool positionOnly, SessionView? resumeFrom, Action<SessionUpdate> updates)
    {
        _positionOnly = positionOnly;
        _updates = updates;
        _view = resumeFrom is { Ready: true } held
            ? held with { JoinError = null }
            : new SessionView { SessionId = sessionId };
    }

    /// <summary>The view now (read from any thread: each one is immutable and published whole).</summary>
    public SessionView View => Volatile.Read(ref _view);

    /// <summary>A join is in flight (or wanted): what arrives is buffered.</summary>
    public bool IsJoining => _joining;

    /// <summary>The <c>s</c> of this session's compact deltas on the current connection, when known.</summary>
    public int? SessionHandle { get; private set; }

    /// <summary>A new connection: its compact deltas name the session by a handle its join result will give.</summary>
    public void ForgetSessionHandle() => SessionHandle = null;

    /// <summary>Marks a join as sent; returns its <c>since</c>: the position held, or null for a snapshot.</summary>
    public StreamPosition? BeginJoin(bool fresh = false)
    {
        _joining = true;
        return fresh || !_view.Ready ? null : _view.Position;
    }

    /// <summary>Applies a join's result (client rule 2), then what was buffered meanwhile.</summary>
    public RejoinAction? CompleteJoin(JoinResult result, long receivedAt)
    {
        var buffered = _buffer;
        _buffer = [];
        _joining = false;
        if (_view.JoinError is not null)
        {
            _view = _view with { JoinError = null };
        }

        if (result.Recovered)
        {
            if (!_view.Ready || result.Epoch != _view.Epoch)
            {
                return RequestRejoin(null, RejoinReason.RecoveryFailed, receivedAt, pending: buffered);
            }

            SessionHandle = result.SessionHandle;
            _view = _view with { Upstream = result.Upstream };
            Report(SessionUpdateKind.Recovered, _view, receivedAt, join: result);
            var events = result.Events ?? [];
            for (var i = 0; i < events.Count; i++)
            {
                if (ApplyEvent(events[i], fromRecovery: true, receivedAt) is { } action)
                {
                    // Whatever the recovered list still held is newer than the position: kept for after the rejoin.
                    _buffer.AddRange(events.Skip(i + 1).Select(e => new Buffered(receivedAt, Event: e)));
                    _buffer.AddRange(buffered);
                    return action;
                }
            }

            // The events bring the view to the result's position (events buffered meanwhile may cover its tail).
            var drained = Drain(buffered);
            if (drained is not null || (_view.Epoch == result.Epoch && _view.Seq >= result.Seq))
            {
                return drained;
            }

            return RequestRejoin(null, RejoinReason.RecoveryFailed, receivedAt);
        }

        if (result.Snapshot is not { } snapshot)
        {
            // Neither recovered nor a snapshot: the server broke its contract. A snapshot join may help.
            return RequestRejoin(null, RejoinReason.RecoveryFailed, receivedAt, pending: buffered);
        }

        var previous = _view;
        ReplaceWith(snapshot);
        SessionHandle = result.SessionHandle ?? snapshot.SessionHandle;
        Report(SessionUpdateKind.Snapshot, previous, receivedAt, snapshot: snapshot, join: result);
        return Drain(buffered);
    }

    /// <summary>
    /// The join failed: stop buffering (the next join with <c>since</c> brings back what is dropped here). With
    /// <paramref name="error"/> it failed for good: the view says why.
    /// </summary>
    public void FailJoin(GatewayException? error, long at)
    {
        _joining = false;
        _buffer = [];
        if (error is not null)
        {
            var previous = _view;
            _view = _view with { JoinError = error };
            Report(SessionUpdateKind.JoinFailed, previous, at);
        }
    }

    /// <summary>A <c>SessionEvent</c> of this session.</summary>
    public RejoinAction? ReceiveEvent(SessionEvent evt, long receivedAt)
    {
        if (_joining)
        {
            _buffer.Add(new Buffered(receivedAt, Event: evt));
            return null;
        }

        return _view.Ready ? ApplyEvent(evt, fromRecovery: false, receivedAt) : null;
    }

    /// <summary>
    /// A compact delta that may be this session's: applied when its <c>s</c> is this session's handle (another <c>s</c> is
    /// another session's, or an epoch left behind: ignored), buffered while a join is in flight.
    /// </summary>
    public RejoinAction? ReceiveDelta(CompactDelta delta, long receivedAt)
    {
        if (_joining)
        {
            _buffer.Add(new Buffered(receivedAt, Delta: delta));
            return null;
        }

        if (!_view.Ready || delta.S != SessionHandle)
        {
            Report(SessionUpdateKind.Ignored, _view, receivedAt, delta: delta);
            return null;
        }

        return ApplyDelta(delta, receivedAt);
    }

    /// <summary>A pushed <c>SessionSnapshot</c> (continuity lost upstream): replaces the view when newer (rule 5).</summary>
    public RejoinAction? ReceiveSnapshot(SessionSnapshot snapshot, long receivedAt)
    {
        if (_joining)
        {
            _buffer.Add(new Buffered(receivedAt, Snapshot: snapshot));
            return null;
        }

        if (!_view.Ready || snapshot.Epoch > _view.Epoch || (snapshot.Epoch == _view.Epoch && snapshot.Seq > _view.Seq))
        {
            var previous = _view;
            ReplaceWith(snapshot);
            SessionHandle = snapshot.SessionHandle ?? SessionHandle;
            Report(SessionUpdateKind.Snapshot, previous, receivedAt, snapshot: snapshot);
        }
        else
        {
            Report(SessionUpdateKind.Duplicate, _view, receivedAt, snapshot: snapshot);
        }

        return null;
    }

    /// <summary>
    /// Adds a page of <c>LoadEarlier</c> fetched with <paramref name="cursor"/> before the messages held (rule 11). False
    /// when the view no longer starts there (a snapshot replaced it meanwhile): page again from its <c>Earlier</c>.
    /// </summary>
    public bool ApplyEarlier(string cursor, MessagePage page, long at)
    {
        if (!_view.Ready || _view.Earlier?.Cursor != cursor || _positionOnly)
        {
            return false;
        }

        var previous = _view;
        var messages = _view.MessageList;
        foreach (var message in page.Messages)
        {
            var id = IdOf(message.Info);
            if (id is null)
            {
                continue;
            }

            var i = SortedById.IndexOf(messages, id, m => m.Id);
            if (i < 0)
            {
                messages = messages.Insert(~i, MessageOf(id, message, NoGapsOf));
                continue;
            }

            // Held already (an event made it): it keeps what it has, and takes what only the page knows.
            var held = messages[i];
            if (held.Role is null)
            {
                held = held.WithInfo(message.Info);
            }

            foreach (var part in message.Parts)
            {
                if (IdOf(part) is { } partId && SortedById.IndexOf(held.PartList, partId, p => p.Id) < 0)
                {
                    held = held.WithParts(SortedById.Upsert(held.PartList, PartOf(partId, id, part, NoGaps), p => p.Id));
                }
            }

            messages = messages.SetItem(i, held);
        }

        _view = _view with { MessageList = messages, Earlier = page.Earlier };
        Report(SessionUpdateKind.EarlierPage, previous, at);
        return true;
    }

    public void SetMetadata(SessionMetadata metadata, long at)
    {
        var previous = _view;
        _view = _view with { Metadata = metadata };
        Report(SessionUpdateKind.Metadata, previous, at);
    }

    private RejoinAction? Drain(List<Buffered> items)
    {
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            var action = item switch
            {
                { Event: { } evt } => ReceiveEvent(evt, item.ReceivedAt),
                { Delta: { } delta } => ReceiveDelta(delta, item.ReceivedAt),
                _ => ReceiveSnapshot(item.Snapshot!, item.ReceivedAt),
            };
            if (action is not null)
            {
                _buffer.AddRange(items.Skip(i + 1));
                return action;
            }
        }

        return null;
    }

    /// <summary>Starts buffering (the caller rejoins); <paramref name="pending"/> is looked at again after the join.</summary>
    private RejoinAction RequestRejoin(StreamPosition? since, RejoinReason reason, long receivedAt, SessionEvent? evt = null,
        CompactDelta? delta = null, List<Buffered>? pending = null)
    {
        _joining = true;
        if (evt is not null)
        {
            _buffer.Add(new Buffered(receivedAt, Event: evt));
        }

        if (delta is not null)
        {
            _buffer.Add(new Buffered(receivedAt, Delta: delta));
        }

        if (pending is not null)
        {
            _buffer.AddRange(pending);
        }

        _updates(new SessionUpdate(SessionUpdateKind.Rejoin, _view, _view, receivedAt)
        {
            Event = evt, Delta = delta, RejoinReason = reason, RejoinSince = since,
        });
        return new RejoinAction(since, reason);
    }

    private RejoinAction? ApplyEvent(SessionEvent evt, bool fromRecovery, long receivedAt)
    {
        if (evt.Epoch != _view.Epoch)
        {
            return RequestRejoin(null, RejoinReason.Epoch, receivedAt, evt: evt);
        }

        if (evt.Seq <= _view.Seq)
        {
            Report(SessionUpdateKind.Duplicate, _view, receivedAt, evt: evt);
            return null;
        }

        if (evt.Seq > _view.Seq + 1)
        {
            // Recovered events come without holes: when they have one, since will not help.
            return fromRecovery
                ? RequestRejoin(null, RejoinReason.RecoveryFailed, receivedAt, evt: evt)
                : RequestRejoin(_view.Position, RejoinReason.Gap, receivedAt, evt: evt);
        }

        var previous = _view;
        var next = _view;
        if (!_positionOnly)
        {
            next = next with { PartHandles = NoteHandles(next.PartHandles, evt) };
            switch (ApplyContent(next, evt))
            {
                case (Applied.UnknownHandle, _):
                    return RequestRejoin(null, RejoinReason.UnknownHandle, receivedAt);
                case (Applied.OffsetPastEnd, _):
                    return RejoinForDeltaGap(evt.Seq, receivedAt, evt: evt);
                case (_, var applied):
                    next = applied;
                    break;
            }
        }

        _view = next with { Seq = evt.Seq };
        Report(SessionUpdateKind.Event, previous, receivedAt, evt: evt);
        return null;
    }

    /// <summary>A compact delta of this session's epoch: the seq rules of any event, then the delta on the field <c>h</c> names.</summary>
    private RejoinAction? ApplyDelta(CompactDelta delta, long receivedAt)
    {
        if (delta.Seq <= _view.Seq)
        {
            Report(SessionUpdateKind.Duplicate, _view, receivedAt, delta: delta);
            return null;
        }

        if (delta.Seq > _view.Seq + 1)
        {
            return RequestRejoin(_view.Position, RejoinReason.Gap, receivedAt, delta: delta);
        }

        var previous = _view;
        var next = _view;
        if (!_positionOnly)
        {
            if (!_view.PartHandles.TryGetValue(delta.H, out var target))
            {
                return RequestRejoin(null, RejoinReason.UnknownHandle, receivedAt);
            }

            if (ApplyDeltaTo(next, target, delta.Offset, delta.Delta) is not (Applied.Applied, var applied))
            {
                return RejoinForDeltaGap(delta.Seq, receivedAt, delta: delta);
            }

            next = applied;
        }

        _view = next with { Seq = delta.Seq };
        Report(SessionUpdateKind.Delta, previous, receivedAt, delta: delta);
        return null;
    }

    /// <summary>A delta's offset is past the text held: rejoin with since, or for a snapshot when the same delta did it before.</summary>
    private RejoinAction RejoinForDeltaGap(long seq, long receivedAt, SessionEvent? evt = null, CompactDelta? delta = null)
    {
        var again = _lastDeltaGap == new StreamPosition(_view.Epoch, seq);
        _lastDeltaGap = new StreamPosition(_view.Epoch, seq);
        return RequestRejoin(again ? null : _view.Position, RejoinReason.DeltaGap, receivedAt, evt, delta);
    }

    private enum Applied { Applied, OffsetPastEnd, UnknownHandle }

    private static (Applied, SessionView) ApplyContent(SessionView view, SessionEvent evt) => evt.Type switch
    {
        SessionEventTypes.PartDelta when evt is { MessageId: { } messageId, PartId: { } partId } =>
            ApplyDeltaTo(view, new PartField(messageId, partId, evt.Field ?? StreamedFields.Text), evt.Offset, evt.Delta ?? ""),
        SessionEventTypes.PartUpdated => ApplyPartUpdated(view, evt),
        _ => (Applied.Applied, ApplyOther(view, evt)),
    };

    /// <summary>
    /// Remembers the part fields an event's handles name (rule 8): its <c>handle</c> (of <c>field</c>, else of
    /// <c>text</c>) and a tool part's <c>handles</c>.
    /// </summary>
    private static ImmutableDictionary<int, PartField> NoteHandles(ImmutableDictionary<int, PartField> handles, SessionEvent evt)
    {
        if (evt is not { Type: SessionEventTypes.PartUpdated or SessionEventTypes.PartDelta or SessionEventTypes.PartGap, MessageId: { } messageId, PartId: { } partId })
        {
            return handles;
        }

        if (evt.Handle is { } handle)
        {
            handles = handles.SetItem(handle, new PartField(messageId, partId, evt.Field ?? StreamedFields.Text));
        }

        if (evt.Type == SessionEventTypes.PartUpdated && evt.Handles is { } named)
        {
            foreach (var (field, h) in named)
            {
                handles = handles.SetItem(h, new PartField(messageId, partId, field));
            }
        }

        return handles;
    }

    /// <summary>A positioned delta into a part's field (rule 4); <see cref="Applied.OffsetPastEnd"/> when text before it is missing.</summary>
    private static (Applied, SessionView) ApplyDeltaTo(SessionView view, PartField target, int? eventOffset, string delta)
    {
        var (messages, index, message) = EnsureMessage(view, target.MessageId);
        var partIndex = SortedById.IndexOf(message.PartList, target.PartId, p => p.Id);
        var part = partIndex >= 0 ? message.PartList[partIndex] : new PartView(target.PartId, target.MessageId, null, NoFields, null);
        var current = part.Field(target.Field) ?? "";
        var offset = eventOffset ?? current.Length;
        string text;
        if (offset == current.Length)
        {
            text = current + delta;
        }
        else if (offset + delta.Length <= current.Length)
        {
            return (Applied.Applied, view); // held already
        }
        else if (offset < current.Length)
        {
            text = string.Concat(current, delta.AsSpan(current.Length - offset));
        }
        else
        {
            return (Applied.OffsetPastEnd, view);
        }

        return (Applied.Applied, WithPart(view, messages, index, message, part.WithField(target.Field, text)));
    }

    /// <summary>
    /// Rule 9: the part replaces the one held, except that without <c>text</c> it keeps the text held, and a field
    /// <c>copies</c> names that it lacks takes that handle's text (read before replacing). Any other streamed field it
    /// lacks is gone; one it carries is restated whole. Either way that field's gaps go, unless its text was kept.
    /// </summary>
    private static (Applied, SessionView) ApplyPartUpdated(SessionView view, SessionEvent evt)
    {
        if (evt.Part is not { ValueKind: JsonValueKind.Object } part)
        {
            return (Applied.Applied, view);
        }

        var partId = evt.PartId ?? StringOf(part, "id");
        var messageId = evt.MessageId ?? StringOf(part, "messageID");
        if (partId is null || messageId is null)
        {
            return (Applied.Applied, view);
        }

        var copies = new Dictionary<string, (string Text, IReadOnlyList<int> Gaps)>(StringComparer.Ordinal);
        foreach (var (field, handle) in evt.Copies ?? ImmutableDictionary<string, int>.Empty)
        {
            if (!view.PartHandles.TryGetValue(handle, out var source))
            {
                return (Applied.UnknownHandle, view);
            }

            var from = view.Message(source.MessageId) is { } m ? SortedById.Find(m.PartList, source.PartId, p => p.Id) : null;
            copies[field] = (from?.Field(source.Field) ?? "", from?.GapsOf(source.Field) ?? []);
        }

        var (messages, index, message) = EnsureMessage(view, messageId);
        var held = SortedById.Find(message.PartList, partId, p => p.Id);
        var fields = NoFields.ToBuilder();
        var gaps = (held?.GapMap ?? NoGaps).ToBuilder();
        foreach (var field in StreamedFieldPaths.Union(copies.Keys))
        {
            if (PartPaths.Get(part, field) is { } stated)
            {
                fields[field] = stated;
                gaps.Remove(field);
            }
            else if (copies.TryGetValue(field, out var copy))
            {
                fields[field] = copy.Text;
                if (copy.Gaps.Count == 0)
                {
                    gaps.Remove(field);
                }
                else
                {
                    gaps[field] = copy.Gaps;
                }
            }
            else if (field == StreamedFields.Text && held?.Field(field) is { } kept)
            {
                fields[field] = kept; // its gaps stay
            }
            else
            {
                gaps.Remove(field);
            }
        }

        var next = new PartView(partId, messageId, part, fields.ToImmutable(), gaps.ToImmutable());
        return (Applied.Applied, WithPart(view, messages, index, message, next));
    }

    private static SessionView ApplyOther(SessionView view, SessionEvent evt)
    {
        switch (evt.Type)
        {
            case SessionEventTypes.PartGap when evt is { MessageId: { } messageId, PartId: { } partId, Offset: { } offset }:
            {
                var field = evt.Field ?? StreamedFields.Text;
                var (messages, index, message) = EnsureMessage(view, messageId);
                var part = SortedById.Find(message.PartList, partId, p => p.Id) ?? new PartView(partId, messageId, null, NoFields, null);
                var current = part.GapsOf(field);
                return current.Contains(offset)
                    ? view
                    : WithPart(view, messages, index, message, part.WithGaps(part.GapMap.SetItem(field, [.. current.Append(offset).Order()])));
            }
            case SessionEventTypes.PartRemoved when evt.PartId is { } partId:
            {
                var messages = view.MessageList;
                for (var i = 0; i < messages.Count; i++)
                {
                    if ((evt.MessageId is null || messages[i].Id == evt.MessageId)
                        && SortedById.IndexOf(messages[i].PartList, partId, p => p.Id) is var p and >= 0)
                    {
                        return view with { MessageList = messages.SetItem(i, messages[i].WithParts(messages[i].PartList.RemoveAt(p))) };
                    }
                }

                return view;
            }
            case SessionEventTypes.MessageUpdated when evt.Info is { ValueKind: JsonValueKind.Object } info && (evt.MessageId ?? IdOf(info)) is { } messageId:
            {
                var i = SortedById.IndexOf(view.MessageList, messageId, m => m.Id);
                return view with
                {
                    MessageList = i >= 0
                        ? view.MessageList.SetItem(i, view.MessageList[i].WithInfo(info))
                        : view.MessageList.Insert(~i, new MessageView(messageId, info, [])),
                };
            }
            case SessionEventTypes.MessageRemoved when evt.MessageId is { } messageId:
            {
                var i = SortedById.IndexOf(view.MessageList, messageId, m => m.Id);
                return i >= 0 ? view with { MessageList = view.MessageList.RemoveAt(i) } : view;
            }
            case SessionEventTypes.Status when evt.Status is { ValueKind: JsonValueKind.Object } status:
                return view with { Status = status, Error = StringOf(status, "type") == "busy" ? null : view.Error };
            case SessionEventTypes.Error:
                return view with { Error = evt.Error ?? JsonSerializer.SerializeToElement(new { name = "UnknownError" }) };
            // What a run waits for, of the session and its descendants alike, by request id (rule 10).
            case SessionEventTypes.PermissionAsked when evt.Permission is { } permission && IdOf(permission) is { } id:
                return view with { Permissions = Upsert(view.Permissions, permission, id) };
            case SessionEventTypes.PermissionReplied when evt.RequestId is { } id:
                return view with { Permissions = Without(view.Permissions, id) };
            case SessionEventTypes.QuestionAsked when evt.Question is { } question && IdOf(question) is { } id:
                return view with { Questions = Upsert(view.Questions, question, id) };
            case SessionEventTypes.QuestionReplied or SessionEventTypes.QuestionRejected when evt.Question is { } question && IdOf(question) is { } id:
                return view with { Questions = Without(view.Questions, id) };
            case SessionEventTypes.ChildUpdated when evt.Child is { } child:
                return view with
                {
                    Children = view.Children.Any(c => c.Id == child.Id)
                        ? [.. view.Children.Select(c => c.Id == child.Id ? child : c)]
                        : [.. view.Children, child],
                };
            case SessionEventTypes.TodoUpdated:
                return view with { Todos = evt.Todos };
            case SessionEventTypes.SessionUpdated when evt.Info is { } info:
                return view with { Session = info };
            case SessionEventTypes.SessionDeleted:
                return view with { Deleted = true };
            default:
                return view; // other types (epoch.started, ones added later) take their seq and change nothing
        }
    }

    private static IReadOnlyList<JsonElement> Upsert(IReadOnlyList<JsonElement> list, JsonElement item, string id) =>
        list.Any(x => IdOf(x) == id) ? [.. list.Select(x => IdOf(x) == id ? item : x)] : [.. list, item];

    private static IReadOnlyList<JsonElement> Without(IReadOnlyList<JsonElement> list, string id) =>
        list.Any(x => IdOf(x) == id) ? [.. list.Where(x => IdOf(x) != id)] : list;

    private void ReplaceWith(SessionSnapshot snapshot)
    {
        _lastDeltaGap = null;
        if (_positionOnly)
        {
            _view = _view with { Upstream = snapshot.Upstream, Epoch = snapshot.Epoch, Seq = snapshot.Seq, Ready = true };
            return;
        }

        var kept = _view.Ready ? MessagesBefore(snapshot) : [];
        var messages = kept;
        var partMessages = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var message in snapshot.Messages)
        {
            if (IdOf(message.Info) is not { } id)
            {
                continue;
            }

            foreach (var part in message.Parts)
            {
                if (IdOf(part) is { } partId)
                {
                    partMessages[partId] = id;
                }
            }

            messages = SortedById.Upsert(messages, MessageOf(id, message, partId => snapshot.Gaps?.GetValueOrDefault(partId)), m => m.Id);
        }

        var handles = ImmutableDictionary.CreateBuilder<int, PartField>();
        foreach (var (partId, fields) in snapshot.Handles ?? ImmutableDictionary<string, IReadOnlyDictionary<string, int>>.Empty)
        {
            if (partMessages.TryGetValue(partId, out var messageId))
            {
                foreach (var (field, handle) in fields)
                {
                    handles[handle] = new PartField(messageId, partId, field);
                }
            }
        }

        _view = _view with
        {
            Upstream = snapshot.Upstream,
            Epoch = snapshot.Epoch,
            Seq = snapshot.Seq,
            Ready = true,
            Session = snapshot.Session,
            MessageList = messages,
            // Kept messages start where the view's cursor points; otherwise the window starts where the snapshot's does.
            Earlier = kept.Count > 0 ? _view.Earlier : snapshot.Earlier,
            Status = snapshot.Status.ValueKind == JsonValueKind.Object ? snapshot.Status : SessionView.Idle,
            Permissions = snapshot.Permissions ?? [],
            Questions = snapshot.Questions ?? [],
            Children = snapshot.Children ?? [],
            Todos = snapshot.Todos,
            Metadata = snapshot.Metadata,
            PartHandles = handles.ToImmutable(),
            Error = null,
            Deleted = false,
        };
    }

    /// <summary>
    /// Rule 11: the messages held that are older than a new snapshot's window, kept when they reach up to it (its first
    /// message is held, so nothing lies between), none when the snapshot says no older ones exist.
    /// </summary>
    private ImmutableList<MessageView> MessagesBefore(SessionSnapshot snapshot)
    {
        var first = snapshot.Messages.Count > 0 ? IdOf(snapshot.Messages[0].Info) : null;
        if (snapshot.Earlier is null || first is null || SortedById.IndexOf(_view.MessageList, first, m => m.Id) is not (var at and >= 0))
        {
            return [];
        }

        return _view.MessageList.GetRange(0, at);
    }

    private static MessageView MessageOf(string id, MessageWithParts message, Func<string, IReadOnlyDictionary<string, IReadOnlyList<int>>?> gapsOf)
    {
        var parts = ImmutableList.CreateBuilder<PartView>();
        foreach (var part in message.Parts)
        {
            if (IdOf(part) is not { } partId)
            {
                continue;
            }

            var gaps = NoGaps;
            foreach (var (field, offsets) in gapsOf(partId) ?? ImmutableDictionary<string, IReadOnlyList<int>>.Empty)
            {
                gaps = gaps.SetItem(field, [.. offsets.Order()]);
            }

            parts.Add(PartOf(partId, id, part, gaps));
        }

        parts.Sort((a, b) => string.CompareOrdinal(a.Id, b.Id));
        return new MessageView(id, message.Info, parts.ToImmutable());
    }

    private static IReadOnlyDictionary<string, IReadOnlyList<int>>? NoGapsOf(string partId) => null;

    private static PartView PartOf(string partId, string messageId, JsonElement part, ImmutableDictionary<string, IReadOnlyList<int>> gaps)
    {
        var fields = NoFields.ToBuilder();
        foreach (var path in StreamedFieldPaths)
        {
            if (PartPaths.Get(part, path) is { } text)
            {
                fields[path] = text;
            }
        }

        return new PartView(partId, messageId, part, fields.ToImmutable(), gaps);
    }

    /// <summary>The message of <paramref name="messageId"/>: held, or a stub (a part before its message) until its update.</summary>
    private static (ImmutableList<MessageView> Messages, int Index, MessageView Message) EnsureMessage(SessionView view, string messageId)
    {
        var i = SortedById.IndexOf(view.MessageList, messageId, m => m.Id);
        if (i >= 0)
        {
            return (view.MessageList, i, view.MessageList[i]);
        }

        var stub = new MessageView(messageId, JsonSerializer.SerializeToElement(new { id = messageId, sessionID = view.SessionId }), []);
        return (view.MessageList.Insert(~i, stub), ~i, stub);
    }

    private static SessionView WithPart(SessionView view, ImmutableList<MessageView> messages, int index, MessageView message, PartView part) =>
        view with { MessageList = messages.SetItem(index, message.WithParts(SortedById.Upsert(message.PartList, part, p => p.Id))) };

    private static string? IdOf(JsonElement element) => StringOf(element, "id");

    private static string? StringOf(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private void Report(SessionUpdateKind kind, SessionView previous, long receivedAt, SessionEvent? evt = null, CompactDelta? delta = null,
        SessionSnapshot? snapshot = null, JoinResult? join = null) =>
        _updates(new SessionUpdate(kind, previous, _view, receivedAt) { Event = evt, Delta = delta, Snapshot = snapshot, JoinResult = join });

    /// <summary>An item that arrived while a join was in flight, with when it arrived.</summary>
    private sealed record Buffered(long ReceivedAt, SessionEvent? Event = null, CompactDelta? Delta = null, SessionSnapshot? Snapshot = null);
}
