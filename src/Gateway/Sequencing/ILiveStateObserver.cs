namespace OpencodeGateway.Sequencing;

/// <summary>
/// Told each change of a session's live state as the sequencer makes it (under the session's lock), by whoever keeps a
/// copy of that state elsewhere: in a cluster the history mirrors it in Redis, so that any node reads the same state;
/// a single node has no observer.
/// </summary>
internal interface ILiveStateObserver
{
    /// <summary>Everything changed: the copy is written whole next (a new state, a new epoch, a field gone).</summary>
    void Reset();

    void InfoChanged();

    void StatusChanged();

    void TodosChanged();

    void MessageChanged(string id);

    /// <summary>A part's own entry (everything but its streamed fields' text) changed.</summary>
    void PartChanged(string id);

    /// <summary>A streamed field was created or its text replaced (its gaps and handle with it).</summary>
    void FieldReplaced(string partId, string field);

    /// <summary><paramref name="text"/> was appended to a streamed field.</summary>
    void FieldAppended(string partId, string field, string text);

    void PermissionChanged(string id);

    void QuestionChanged(string id);

    void ChildChanged(string id);
}
