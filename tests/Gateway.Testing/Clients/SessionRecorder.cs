using System.Text.Json;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>
/// What the tests check at every update the Gateway.Client package reports for a session (<see cref="OnUpdate"/>):
/// what each part showed before every replacement (so that every moment can be held against opencode's final text),
/// that no part field handle names two fields, which positions were applied in order, and counts of snapshots,
/// recoveries, duplicates and rejoins. It checks the package's rules; it does not apply them.
/// </summary>
public class SessionRecorder
{
    // What each streamed field showed right before it was replaced (between replacements text only grows by appends).
    private readonly List<ShownText> _shown = [];
    // The part field each handle named since the last snapshot, to check that none names two.
    private readonly Dictionary<int, (string MessageId, string PartId, string Field)> _handles = [];
    private SessionView? _view;

    /// <summary>What one streamed field of a part showed at one moment, with its gap marks.</summary>
    public sealed record ShownText(string PartId, string Field, string Text, IReadOnlyList<int> Gaps);

    /// <summary>The view of the last update.</summary>
    public SessionView View => _view ?? throw new InvalidOperationException("No update was recorded yet.");

    /// <summary>Held while recording an update; <see cref="ObservedSession.Read{T}"/> reads under it.</summary>
    protected Lock Gate { get; } = new();

    /// <summary>Join results that were snapshots; pushed snapshots that replaced the view.</summary>
    public int Snapshots { get; private set; }

    public int PushedSnapshots { get; private set; }

    /// <summary>Join results that recovered the missed events from <c>since</c>.</summary>
    public int Recoveries { get; private set; }

    public int Duplicates { get; private set; }

    /// <summary>The session handle the latest join result or pushed snapshot named (compact connections).</summary>
    public int? SessionHandle { get; private set; }

    /// <summary>Events of an epoch whose snapshot the view did not have (the gateway must push the snapshot first).</summary>
    public int EventsBeforeTheirEpochSnapshot { get; private set; }

    /// <summary>Events and compact deltas applied.</summary>
    public int EventsApplied { get; private set; }

    public int CompactApplied { get; private set; }

    /// <summary>Compact deltas of a session handle the session did not hold (an epoch it had left or not reached).</summary>
    public int CompactIgnored { get; private set; }

    /// <summary>The type of every event applied (a compact delta is a <c>part.delta</c>), in order.</summary>
    public List<string> EventTypes { get; } = [];

    /// <summary>The (epoch, seq) of every event applied, in order.</summary>
    public List<(long Epoch, long Seq)> AppliedPositions { get; } = [];

    /// <summary>What a run waits for that arrived with a <c>childSessionId</c>: (event type, descendant).</summary>
    public List<(string Type, string ChildSessionId)> FromDescendants { get; } = [];

    /// <summary>Contract violations seen: a handle naming two part fields, a handle used that was never introduced.</summary>
    public List<string> HandleViolations { get; } = [];

    /// <summary>Rejoins that failed for good.</summary>
    public List<string> Failures { get; } = [];

    /// <summary>When the status last became idle.</summary>
    public DateTimeOffset? IdleAt { get; private set; }

    /// <summary>The text of every text part, one line each (compare with <see cref="OpencodeText.AllText(JsonElement)"/>).</summary>
    public string AllText() => OpencodeText.AllText(View);

    /// <summary>
    /// Every moment's text of a streamed field that is not opencode's final text cut short, or split at its gap marks
    /// into pieces found in that order in the final text (the first one at its start). <paramref name="final"/> gives
    /// opencode's final text of a part's field, or null where it does not know (not checked).
    /// </summary>
    public List<string> ShownViolations(Func<string, string, string?> final)
    {
        lock (Gate)
        {
            RecordAll(View);
            return [.. _shown
                .Where(s => final(s.PartId, s.Field) is { } text && !TextInvariant.Holds(s.Text, s.Gaps, text))
                .Select(s => $"{s.PartId} {s.Field}: showed \"{Cut(s.Text)}\" with gaps [{string.Join(",", s.Gaps)}], final \"{Cut(final(s.PartId, s.Field)!)}\"")];
        }
    }

    /// <summary><see cref="ShownViolations"/> of the <c>text</c> field: <paramref name="finalText"/> by part id.</summary>
    public List<string> ShownTextViolations(Func<string, string?> finalText) =>
        ShownViolations((partId, field) => field == StreamedFields.Text ? finalText(partId) : null);

    /// <summary>How many moments were recorded of one field (tests check the recorder saw the field grow).</summary>
    public int ShownCountOf(string field)
    {
        lock (Gate)
        {
            return _shown.Count(s => s.Field == field);
        }
    }

    /// <summary>Every gap offset some part's text ever carried (0: its start was unknown).</summary>
    public List<int> GapOffsetsShown()
    {
        lock (Gate)
        {
            return [.. View.Parts.SelectMany(p => p.Gaps.Values.SelectMany(g => g)).Concat(_shown.SelectMany(s => s.Gaps))];
        }
    }

    /// <summary>
    /// What the client must hold against opencode's stored messages: every streamed field of every part byte-identical, no
    /// moment that showed other than a prefix of the final text (or pieces of it at gap marks), no handle misused. Empty
    /// when all holds.
    /// </summary>
    public List<string> Mismatches(JsonElement storedMessages)
    {
        var final = OpencodeText.FinalFields(storedMessages);
        var problems = ShownViolations((part, field) => final.GetValueOrDefault((part, field)));
        var view = View;
        lock (Gate)
        {
            problems.AddRange(HandleViolations);
        }

        foreach (var ((partId, field), text) in final)
        {
            if (view.Part(partId)?.Field(field) is var held && held != text)
            {
                problems.Add($"{partId} {field}: holds {(held is null ? "nothing" : $"{held.Length} chars")}, opencode {text.Length}");
            }
        }

        return problems;
    }

    /// <summary>Runs for every update, in order, under the client's lock: counts, records and checks it.</summary>
    public void OnUpdate(object? sender, SessionUpdate update)
    {
        lock (Gate)
        {
            _view = update.View;
            switch (update.Kind)
            {
                case SessionUpdateKind.Snapshot:
                    if (update.JoinResult is null)
                    {
                        PushedSnapshots++;
                        SessionHandle = update.Snapshot!.SessionHandle ?? SessionHandle;
                    }
                    else
                    {
                        Snapshots++;
                        SessionHandle = update.JoinResult.SessionHandle ?? update.Snapshot!.SessionHandle;
                    }

                    if (update.Previous.Ready)
                    {
                        RecordAll(update.Previous);
                    }

                    NoteHandles(update.Snapshot!);
                    break;
                case SessionUpdateKind.Recovered:
                    Recoveries++;
                    SessionHandle = update.JoinResult!.SessionHandle;
                    break;
                case SessionUpdateKind.Event:
                    Applied(update, update.Event!.Type);
                    OnEvent(update.Event, update.Previous);
                    break;
                case SessionUpdateKind.Delta:
                    Applied(update, SessionEventTypes.PartDelta);
                    CompactApplied++;
                    break;
                case SessionUpdateKind.Duplicate:
                    Duplicates++;
                    break;
                case SessionUpdateKind.Ignored:
                    CompactIgnored++;
                    break;
                case SessionUpdateKind.Rejoin when update.RejoinReason == RejoinReason.Epoch:
                    // A snapshot of the new epoch is pushed first; the package rejoins in case it was not (or was lost).
                    EventsBeforeTheirEpochSnapshot++;
                    break;
                case SessionUpdateKind.Rejoin when update.RejoinReason == RejoinReason.UnknownHandle:
                    HandleViolations.Add($"seq {update.Event?.Seq ?? update.Delta?.Seq}: a handle was used that was never introduced");
                    break;
                case SessionUpdateKind.JoinFailed:
                    Failures.Add($"rejoin failed: {update.View.JoinError?.Code}: {update.View.JoinError?.Message}");
                    break;
            }
        }
    }

    private void Applied(SessionUpdate update, string type)
    {
        EventsApplied++;
        AppliedPositions.Add((update.View.Epoch, update.View.Seq));
        EventTypes.Add(type);
    }

    private void OnEvent(SessionEvent evt, SessionView previous)
    {
        switch (evt.Type)
        {
            // Every replacement records what the part showed before it.
            case SessionEventTypes.PartUpdated or SessionEventTypes.PartRemoved when evt.PartId is { } partId:
                Record(previous.Part(partId));
                break;
            case SessionEventTypes.MessageRemoved when evt.MessageId is { } messageId:
                foreach (var part in previous.Message(messageId)?.Parts ?? [])
                {
                    Record(part);
                }

                break;
            case SessionEventTypes.Status when evt.Status?.GetProperty("type").GetString() == "idle":
                IdleAt = DateTimeOffset.UtcNow;
                break;
        }

        if (evt is { MessageId: { } ofMessage, PartId: { } ofPart })
        {
            if (evt.Handle is { } handle)
            {
                NoteHandle(handle, (ofMessage, ofPart, evt.Field ?? StreamedFields.Text), evt.Seq);
            }

            foreach (var (field, h) in evt.Handles ?? new Dictionary<string, int>())
            {
                NoteHandle(h, (ofMessage, ofPart, field), evt.Seq);
            }
        }

        if (evt.ChildSessionId is { } child && evt.Type != SessionEventTypes.ChildUpdated)
        {
            FromDescendants.Add((evt.Type, child));
        }
    }

    private void NoteHandles(SessionSnapshot snapshot)
    {
        _handles.Clear();
        var parts = snapshot.Messages
            .SelectMany(m => m.Parts.Select(p => (Message: m.Info.GetProperty("id").GetString()!, Part: p.GetProperty("id").GetString()!)))
            .ToDictionary(p => p.Part, p => p.Message);
        foreach (var (partId, fields) in snapshot.Handles ?? new Dictionary<string, IReadOnlyDictionary<string, int>>())
        {
            if (!parts.TryGetValue(partId, out var messageId))
            {
                HandleViolations.Add($"snapshot handles name part {partId}, which the snapshot does not have");
                continue;
            }

            foreach (var (field, handle) in fields)
            {
                NoteHandle(handle, (messageId, partId, field), snapshot.Seq);
            }
        }
    }

    private void NoteHandle(int handle, (string MessageId, string PartId, string Field) field, long seq)
    {
        if (_handles.TryGetValue(handle, out var known) && known != field)
        {
            HandleViolations.Add($"seq {seq}: handle {handle} named {known} and then {field}");
        }

        _handles[handle] = field;
    }

    private void RecordAll(SessionView view)
    {
        foreach (var part in view.Parts)
        {
            Record(part);
        }
    }

    private void Record(PartView? part)
    {
        foreach (var field in OpencodeText.StreamedFieldPaths)
        {
            if (part?.Field(field) is { } text)
            {
                _shown.Add(new ShownText(part.Id, field, text, part.GapsOf(field)));
            }
        }
    }

    private static string Cut(string text) => text.Length <= 120 ? text : text[..60] + "…" + text[^60..];
}
