using System.Text.Json;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.History.Internal;

/// <summary>
/// The cluster history's copy of one session's live state in Redis: told each change by the sequencer
/// (<see cref="ILiveStateObserver"/>, under the session's lock), it hands what changed since the last batch as entries
/// (<see cref="TakeChanges"/>), written next to the batch's events. Anything it cannot follow change by change (a new
/// state, a new epoch, a field gone, Redis lost its copy) is written whole.
/// </summary>
internal sealed class LiveStateMirror : ILiveStateObserver
{
    // A new state is reset by the session (written whole first); one loaded from Redis is there already.
    private bool _whole;
    private readonly HashSet<string> _messages = new(StringComparer.Ordinal);
    private readonly HashSet<string> _parts = new(StringComparer.Ordinal);
    private readonly HashSet<(string PartId, string Field)> _fields = [];
    private readonly List<(string PartId, string Field, string Text)> _appends = [];
    private readonly HashSet<string> _permissions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _questions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _children = new(StringComparer.Ordinal);
    private bool _status;
    private bool _info;
    private bool _todos;

    /// <summary>The mirror of <paramref name="session"/>, when its history is a cluster's.</summary>
    public static LiveStateMirror? Of(LiveSession session) => session.Observer as LiveStateMirror;

    public void Reset() => _whole = true;

    public void InfoChanged() => _info = true;

    public void StatusChanged() => _status = true;

    public void TodosChanged() => _todos = true;

    public void MessageChanged(string id) => Add(_messages, id);

    public void PartChanged(string id) => Add(_parts, id);

    public void FieldReplaced(string partId, string field) => Add(_fields, (partId, field));

    public void FieldAppended(string partId, string field, string text)
    {
        if (!_whole)
        {
            _appends.Add((partId, field, text));
        }
    }

    public void PermissionChanged(string id) => Add(_permissions, id);

    public void QuestionChanged(string id) => Add(_questions, id);

    public void ChildChanged(string id) => Add(_children, id);

    // (while the next write is a whole one, single changes need no record)
    private void Add<T>(HashSet<T> set, T item)
    {
        if (!_whole)
        {
            set.Add(item);
        }
    }

    /// <summary>What changed since the last call, as entries; everything after a reset. Call under the session's lock.</summary>
    public LiveChanges TakeChanges(LiveSession session)
    {
        var changes = _whole ? LiveStateEntries.FullWrite(session.CreateImage()) : ChangedEntries(session);
        _whole = _status = _info = _todos = false;
        _messages.Clear();
        _parts.Clear();
        _fields.Clear();
        _appends.Clear();
        _permissions.Clear();
        _questions.Clear();
        _children.Clear();
        return changes;
    }

    private LiveChanges ChangedEntries(LiveSession session)
    {
        var changes = new LiveChanges();
        if (_info && session.SessionInfo is { } info)
        {
            changes.Sets.Add((LiveStateEntries.Info, LiveStateEntries.Encode(info)));
        }

        if (_status && session.Status is { } status)
        {
            changes.Sets.Add((LiveStateEntries.Status, LiveStateEntries.Encode(status)));
        }

        if (_todos && session.Todos is { } todos)
        {
            changes.Sets.Add((LiveStateEntries.Todos, LiveStateEntries.Encode(todos)));
        }

        foreach (var id in _messages)
        {
            changes.Sets.Add((LiveStateEntries.MessageField(id), LiveStateEntries.Encode(session.MessageImage(id))));
        }

        foreach (var id in _parts)
        {
            changes.Sets.Add((LiveStateEntries.PartField(id), LiveStateEntries.Encode(session.PartImage(id))));
        }

        foreach (var (partId, name) in _fields)
        {
            var field = session.FieldImage(partId, name);
            changes.Sets.Add((LiveStateEntries.TextField(partId, name), LiveStateEntries.EncodeField(field.Gaps, field.Handle)));
            changes.TextSets.Add((LiveStateEntries.TextName(partId, name), field.Text));
        }

        foreach (var (partId, name, text) in _appends)
        {
            // A field written whole in this batch already holds what was appended to it.
            if (!_fields.Contains((partId, name)))
            {
                changes.TextAppends.Add((LiveStateEntries.TextName(partId, name), text));
            }
        }

        foreach (var id in _permissions)
        {
            WriteRequest(changes, session.PermissionState(id), LiveStateEntries.PendingField(id), LiveStateEntries.RepliedField(id));
        }

        foreach (var id in _questions)
        {
            WriteRequest(changes, session.QuestionState(id), LiveStateEntries.PendingQuestionField(id), LiveStateEntries.AnsweredQuestionField(id));
        }

        foreach (var id in _children)
        {
            changes.Sets.Add((LiveStateEntries.ChildField(id), LiveStateEntries.Encode(session.Child(id))));
        }

        return changes;
    }

    /// <summary>One request's entries: its pending entry and its answered mark, each set or deleted.</summary>
    private static void WriteRequest(LiveChanges changes, (JsonElement? Pending, bool Answered) state, string pendingEntry,
        string answeredEntry)
    {
        if (state.Pending is { } request)
        {
            changes.Sets.Add((pendingEntry, LiveStateEntries.Encode(request)));
        }
        else
        {
            changes.Deletes.Add(pendingEntry);
        }

        if (state.Answered)
        {
            changes.Sets.Add((answeredEntry, "1"));
        }
        else
        {
            changes.Deletes.Add(answeredEntry);
        }
    }
}
