using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpencodeGateway.Testing;

/// <summary>
/// A client's view of one session, built by the rules a gateway client follows (README, "Client rules"):
/// take a snapshot, then apply events in seq order; ignore duplicates; report gaps and new epochs; keep each part's
/// gap marks; apply compact deltas (<see cref="ApplyCompact"/>) through the session and part field handles the snapshot
/// and the events gave (any streamed field: <c>text</c> or a tool's <c>state.metadata.output</c>/<c>state.output</c>,
/// with <c>copies</c>), and check that no handle ever names two part fields; keep what the run waits for (permissions,
/// questions, of the session and its descendants) and the descendants; prepend pages of earlier messages. It also
/// records what it showed: between two replacements of a part's field the text only grows by appends, so the state
/// right before each replacement (and the final one) stands for every moment in between; <see cref="ShownViolations"/>
/// checks them all against opencode's final text.
/// </summary>
public sealed class SessionModel
{
    private readonly SortedDictionary<string, JsonObject> _messages = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, SortedDictionary<string, JsonObject>> _parts = new(StringComparer.Ordinal);
    // (part id, field) → gap offsets of the field's text
    private readonly Dictionary<(string PartId, string Field), List<int>> _gaps = [];
    private readonly List<ShownText> _shown = [];
    // part field handle → the part field (SessionEvent.handle, SessionSnapshot.handles), for compact deltas
    private readonly Dictionary<int, PartField> _handles = [];
    private readonly record struct PartField(string MessageId, string PartId, string Field);

    /// <summary>The text of a part's streamed field as the client showed it at one moment, with its gap marks.</summary>
    public sealed record ShownText(string PartId, string Field, string Text, IReadOnlyList<int> Gaps);

    /// <summary>The streamed fields a client shows: text (and reasoning) and a tool's output.</summary>
    public static readonly string[] StreamedFields = ["text", "state.metadata.output", "state.output"];

    public long Epoch { get; private set; }
    public long Seq { get; private set; }
    public bool HasSnapshot { get; private set; }
    public string? StatusType { get; private set; }
    public Dictionary<string, JsonObject> Permissions { get; } = new(StringComparer.Ordinal);
    /// <summary>Pending questions (the session's and its descendants'), by request id.</summary>
    public Dictionary<string, JsonObject> Questions { get; } = new(StringComparer.Ordinal);
    /// <summary>The descendants (subagent sessions), by id.</summary>
    public Dictionary<string, JsonObject> Children { get; } = new(StringComparer.Ordinal);
    /// <summary>Where the messages older than the ones held begin (null: the model holds the oldest).</summary>
    public string? EarlierCursor { get; private set; }
    /// <summary>Attention events (permission.*, question.*) that arrived with a childSessionId, by type.</summary>
    public List<(string Type, string ChildSessionId)> FromDescendants { get; } = [];
    public List<string> Errors { get; } = [];

    /// <summary>
    /// The session handle compact deltas of this session's epoch carry (<c>sessionHandle</c> of the latest join result or
    /// snapshot); null on a full-form connection.
    /// </summary>
    public int? SessionHandle { get; set; }

    /// <summary>Compact deltas applied.</summary>
    public int CompactApplied { get; private set; }

    /// <summary>Contract violations seen: a handle naming two part fields, a compact delta with a handle never introduced.</summary>
    public List<string> HandleViolations { get; } = [];

    /// <summary><see cref="OtherSession"/>: a compact delta of a session handle this model does not hold (ignored).</summary>
    public enum Outcome { Applied, Duplicate, Gap, NewEpoch, OtherSession }

    public void ApplySnapshot(JsonElement snapshot)
    {
        RecordAllShown();
        _messages.Clear();
        _parts.Clear();
        _gaps.Clear();
        _handles.Clear();
        Permissions.Clear();
        Questions.Clear();
        Children.Clear();
        EarlierCursor = snapshot.TryGetProperty("earlier", out var earlier) && earlier.ValueKind == JsonValueKind.Object
            ? earlier.GetProperty("cursor").GetString() : null;
        SessionHandle = snapshot.TryGetProperty("sessionHandle", out var sessionHandle) && sessionHandle.ValueKind == JsonValueKind.Number
            ? sessionHandle.GetInt32()
            : null;
        Epoch = snapshot.GetProperty("epoch").GetInt64();
        Seq = snapshot.GetProperty("seq").GetInt64();
        StatusType = snapshot.GetProperty("status").GetProperty("type").GetString();
        foreach (var message in snapshot.GetProperty("messages").EnumerateArray())
        {
            var info = (JsonObject)JsonNode.Parse(message.GetProperty("info").GetRawText())!;
            var id = info["id"]!.GetValue<string>();
            _messages[id] = info;
            var parts = PartsOf(id);
            foreach (var part in message.GetProperty("parts").EnumerateArray())
            {
                var obj = (JsonObject)JsonNode.Parse(part.GetRawText())!;
                parts[obj["id"]!.GetValue<string>()] = obj;
            }
        }

        if (snapshot.TryGetProperty("gaps", out var gaps) && gaps.ValueKind == JsonValueKind.Object)
        {
            foreach (var part in gaps.EnumerateObject())
            {
                foreach (var field in part.Value.EnumerateObject())
                {
                    _gaps[(part.Name, field.Name)] = [.. field.Value.EnumerateArray().Select(o => o.GetInt32())];
                }
            }
        }

        if (snapshot.TryGetProperty("handles", out var handles) && handles.ValueKind == JsonValueKind.Object)
        {
            foreach (var part in handles.EnumerateObject())
            {
                var messageId = _parts.FirstOrDefault(m => m.Value.ContainsKey(part.Name)).Key;
                if (messageId is null)
                {
                    HandleViolations.Add($"snapshot handles name part {part.Name}, which the snapshot does not have");
                    continue;
                }

                foreach (var field in part.Value.EnumerateObject())
                {
                    NoteHandle(field.Value.GetInt32(), new PartField(messageId, part.Name, field.Name));
                }
            }
        }

        foreach (var permission in snapshot.GetProperty("permissions").EnumerateArray())
        {
            var obj = (JsonObject)JsonNode.Parse(permission.GetRawText())!;
            Permissions[obj["id"]!.GetValue<string>()] = obj;
        }

        foreach (var question in snapshot.TryGetProperty("questions", out var questions) ? questions.EnumerateArray() : default)
        {
            var obj = (JsonObject)JsonNode.Parse(question.GetRawText())!;
            Questions[obj["id"]!.GetValue<string>()] = obj;
        }

        foreach (var child in snapshot.TryGetProperty("children", out var children) ? children.EnumerateArray() : default)
        {
            var obj = (JsonObject)JsonNode.Parse(child.GetRawText())!;
            Children[obj["id"]!.GetValue<string>()] = obj;
        }

        HasSnapshot = true;
    }

    /// <summary>
    /// Prepends a page of <c>LoadEarlier</c> (client rule 11): its messages go before the ones held (a message held
    /// already stays as it is); its <c>earlier</c> is where the next page begins.
    /// </summary>
    public void ApplyEarlierPage(JsonElement page)
    {
        foreach (var message in page.GetProperty("messages").EnumerateArray())
        {
            var info = (JsonObject)JsonNode.Parse(message.GetProperty("info").GetRawText())!;
            var id = info["id"]!.GetValue<string>();
            if (_messages.ContainsKey(id))
            {
                continue;
            }

            _messages[id] = info;
            var parts = PartsOf(id);
            foreach (var part in message.GetProperty("parts").EnumerateArray())
            {
                var obj = (JsonObject)JsonNode.Parse(part.GetRawText())!;
                parts[obj["id"]!.GetValue<string>()] = obj;
            }
        }

        EarlierCursor = page.TryGetProperty("earlier", out var earlier) && earlier.ValueKind == JsonValueKind.Object
            ? earlier.GetProperty("cursor").GetString() : null;
    }

    /// <summary>Every message held, oldest first, each as <c>{info, parts}</c> (parts by id).</summary>
    public IEnumerable<(JsonObject Info, IReadOnlyList<JsonObject> Parts)> Messages =>
        _messages.Select(m => (m.Value, (IReadOnlyList<JsonObject>)[.. PartsOf(m.Key).Values]));

    /// <summary>Applies recovered events of a join result (the position they start from must be ours).</summary>
    public void ApplyRecovered(JsonElement joinResult)
    {
        if (joinResult.TryGetProperty("sessionHandle", out var sessionHandle) && sessionHandle.ValueKind == JsonValueKind.Number)
        {
            SessionHandle = sessionHandle.GetInt32();
        }

        foreach (var evt in joinResult.GetProperty("events").EnumerateArray())
        {
            var outcome = Apply(evt);
            if (outcome is Outcome.Gap or Outcome.NewEpoch)
            {
                throw new InvalidOperationException($"recovered events do not line up: {outcome}");
            }
        }
    }

    public Outcome Apply(JsonElement evt)
    {
        var epoch = evt.GetProperty("epoch").GetInt64();
        var seq = evt.GetProperty("seq").GetInt64();
        if (epoch != Epoch)
        {
            return Outcome.NewEpoch;
        }

        if (seq <= Seq)
        {
            return Outcome.Duplicate;
        }

        if (seq > Seq + 1)
        {
            return Outcome.Gap;
        }

        var type = evt.GetProperty("type").GetString();
        if (evt.TryGetProperty("handle", out var handle) && handle.ValueKind == JsonValueKind.Number)
        {
            var field = evt.TryGetProperty("field", out var named) ? named.GetString()! : "text";
            NoteHandle(handle.GetInt32(), new PartField(evt.GetProperty("messageId").GetString()!, evt.GetProperty("partId").GetString()!, field));
        }

        if (evt.TryGetProperty("handles", out var handles) && handles.ValueKind == JsonValueKind.Object)
        {
            foreach (var field in handles.EnumerateObject())
            {
                NoteHandle(field.Value.GetInt32(), new PartField(evt.GetProperty("messageId").GetString()!, evt.GetProperty("partId").GetString()!, field.Name));
            }
        }

        switch (type)
        {
            case "part.updated":
            {
                var part = (JsonObject)JsonNode.Parse(evt.GetProperty("part").GetRawText())!;
                var messageId = evt.GetProperty("messageId").GetString()!;
                var partId = evt.GetProperty("partId").GetString()!;
                var parts = PartsOf(messageId);
                parts.TryGetValue(partId, out var old);
                // Copies read the text their handles name before the part is replaced (client rule 9).
                if (evt.TryGetProperty("copies", out var copies) && copies.ValueKind == JsonValueKind.Object)
                {
                    foreach (var copy in copies.EnumerateObject())
                    {
                        if (FieldText(part, copy.Name) is not null)
                        {
                            continue;
                        }

                        if (!_handles.TryGetValue(copy.Value.GetInt32(), out var source))
                        {
                            HandleViolations.Add($"seq {seq}: copies name handle {copy.Value.GetInt32()}, which was never introduced");
                            return Outcome.NewEpoch;
                        }

                        SetField(part, copy.Name, FieldText(PartsOf(source.MessageId).GetValueOrDefault(source.PartId), source.Field) ?? "");
                    }
                }

                if (!part.ContainsKey("text") && old?["text"] is { } oldText)
                {
                    part["text"] = oldText.GetValue<string>();
                }

                // Every field the update states anew is a restatement: what was shown is recorded, its gaps closed.
                RecordShown(partId);
                foreach (var field in StreamedFields.Where(f => f != "text" || part.ContainsKey("text")))
                {
                    _gaps.Remove((partId, field));
                }

                parts[partId] = part;
                break;
            }
            case "part.gap":
            {
                var key = (evt.GetProperty("partId").GetString()!, evt.GetProperty("field").GetString()!);
                var offset = evt.GetProperty("offset").GetInt32();
                var gaps = _gaps.TryGetValue(key, out var g) ? g : _gaps[key] = [];
                if (!gaps.Contains(offset))
                {
                    gaps.Add(offset);
                    gaps.Sort();
                }

                break;
            }
            case "part.delta":
            {
                var target = new PartField(evt.GetProperty("messageId").GetString()!, evt.GetProperty("partId").GetString()!,
                    evt.GetProperty("field").GetString()!);
                if (!ApplyDelta(target, evt.GetProperty("offset").GetInt32(), evt.GetProperty("delta").GetString()!))
                {
                    return Outcome.NewEpoch;
                }

                break;
            }
            case "part.removed":
                RecordShown(evt.GetProperty("partId").GetString()!);
                foreach (var parts in _parts.Values)
                {
                    parts.Remove(evt.GetProperty("partId").GetString()!);
                }

                break;
            case "message.updated":
                _messages[evt.GetProperty("messageId").GetString()!] = (JsonObject)JsonNode.Parse(evt.GetProperty("info").GetRawText())!;
                break;
            case "message.removed":
                foreach (var partId in PartsOf(evt.GetProperty("messageId").GetString()!).Keys.ToList())
                {
                    RecordShown(partId);
                }

                _messages.Remove(evt.GetProperty("messageId").GetString()!);
                _parts.Remove(evt.GetProperty("messageId").GetString()!);
                break;
            case "status":
                StatusType = evt.GetProperty("status").GetProperty("type").GetString();
                break;
            case "error":
                Errors.Add(evt.GetProperty("error").GetRawText());
                break;
            case "permission.asked":
            {
                var permission = (JsonObject)JsonNode.Parse(evt.GetProperty("permission").GetRawText())!;
                Permissions[permission["id"]!.GetValue<string>()] = permission;
                break;
            }
            case "permission.replied":
                Permissions.Remove(evt.GetProperty("requestId").GetString()!);
                break;
            case "question.asked":
            {
                var question = (JsonObject)JsonNode.Parse(evt.GetProperty("question").GetRawText())!;
                Questions[question["id"]!.GetValue<string>()] = question;
                break;
            }
            case "question.replied" or "question.rejected":
                Questions.Remove(evt.GetProperty("question").GetProperty("id").GetString()!);
                break;
            case "child.updated":
                Children[evt.GetProperty("childSessionId").GetString()!] = (JsonObject)JsonNode.Parse(evt.GetProperty("child").GetRawText())!;
                break;
        }

        if (evt.TryGetProperty("childSessionId", out var childSessionId) && type is not "child.updated")
        {
            FromDescendants.Add((type!, childSessionId.GetString()!));
        }

        Seq = seq;
        return Outcome.Applied;
    }

    /// <summary>
    /// Applies a compact delta (README, client rules): of this session's epoch only when its session handle is ours;
    /// then the seq rules of any event, and the offset rules on the part field its handle names.
    /// </summary>
    public Outcome ApplyCompact(CompactDelta delta)
    {
        if (SessionHandle != delta.S)
        {
            return Outcome.OtherSession;
        }

        if (delta.Seq <= Seq)
        {
            return Outcome.Duplicate;
        }

        if (delta.Seq > Seq + 1)
        {
            return Outcome.Gap;
        }

        if (!_handles.TryGetValue(delta.H, out var target))
        {
            // The gateway introduces every handle before its first compact delta: our state is not the gateway's.
            HandleViolations.Add($"compact delta seq {delta.Seq}: handle {delta.H} was never introduced");
            return Outcome.NewEpoch;
        }

        if (!ApplyDelta(target, delta.Offset, delta.Delta))
        {
            return Outcome.NewEpoch;
        }

        CompactApplied++;
        Seq = delta.Seq;
        return Outcome.Applied;
    }

    private bool ApplyDelta(PartField target, int offset, string delta)
    {
        var parts = PartsOf(target.MessageId);
        if (!parts.TryGetValue(target.PartId, out var part))
        {
            part = new JsonObject { ["id"] = target.PartId, ["messageID"] = target.MessageId };
            parts[target.PartId] = part;
        }

        var current = FieldText(part, target.Field) ?? "";
        if (offset > current.Length)
        {
            // Text is missing that no replay can bring back: only a snapshot can.
            return false;
        }

        if (offset + delta.Length > current.Length)
        {
            SetField(part, target.Field, current + delta[(current.Length - offset)..]);
        }

        return true;
    }

    /// <summary>The string at a field path of a part (<c>text</c>, <c>state.metadata.output</c>), or null.</summary>
    public static string? FieldText(JsonObject? part, string path)
    {
        JsonNode? node = part;
        foreach (var name in path.Split('.'))
        {
            node = node is JsonObject obj ? obj[name] : null;
        }

        return node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;
    }

    private static void SetField(JsonObject part, string path, string value)
    {
        var names = path.Split('.');
        var current = part;
        foreach (var name in names[..^1])
        {
            if (current[name] is not JsonObject next)
            {
                next = new JsonObject();
                current[name] = next;
            }

            current = next;
        }

        current[names[^1]] = value;
    }

    private void NoteHandle(int handle, PartField field)
    {
        if (_handles.TryGetValue(handle, out var known) && known != field)
        {
            HandleViolations.Add($"handle {handle} named {known} and then {field}");
        }

        _handles[handle] = field;
    }

    /// <summary>The gap marks of a part's text (empty when it is continuous).</summary>
    public IReadOnlyList<int> GapsOf(string partId, string field = "text") => _gaps.TryGetValue((partId, field), out var gaps) ? gaps : [];

    /// <summary>
    /// Every moment's text that is not opencode's final text of its part cut short, or split at its gap marks into
    /// pieces found in that order in the final text (the first one at its start). <paramref name="finalText"/> gives
    /// opencode's final text of a part, or null for parts it does not know (they are not checked).
    /// </summary>
    public List<string> ShownTextViolations(Func<string, string?> finalText) =>
        ShownViolations((partId, field) => field == "text" ? finalText(partId) : null);

    /// <summary>
    /// <see cref="ShownTextViolations"/> for every streamed field: <paramref name="final"/> gives opencode's final text
    /// of a part's field (path), or null for fields it does not know (not checked).
    /// </summary>
    public List<string> ShownViolations(Func<string, string, string?> final)
    {
        RecordAllShown();
        var violations = new List<string>();
        foreach (var shown in _shown)
        {
            if (final(shown.PartId, shown.Field) is { } text && !TextInvariant.Holds(shown.Text, shown.Gaps, text))
            {
                violations.Add($"{shown.PartId} {shown.Field}: showed \"{Cut(shown.Text)}\" with gaps [{string.Join(",", shown.Gaps)}], final \"{Cut(text)}\"");
            }
        }

        return violations;
    }

    /// <summary>How many moments were recorded of one field (for tests that check the recorder saw the field grow).</summary>
    public int ShownCountOf(string field) => _shown.Count(s => s.Field == field);

    /// <summary>How many distinct moments were recorded (for tests that check the recorder saw something).</summary>
    public int ShownCount => _shown.Count;

    /// <summary>Whether some part's text ever carried a gap mark.</summary>
    public bool ShowedAGap => GapOffsetsShown.Any();

    /// <summary>Every gap offset some part's text ever carried (0: its start was unknown).</summary>
    public IEnumerable<int> GapOffsetsShown => _gaps.Values.SelectMany(g => g).Concat(_shown.SelectMany(s => s.Gaps));

    /// <summary>The part with this id, if held.</summary>
    public JsonObject? Part(string partId) => Parts.FirstOrDefault(p => p["id"]?.GetValue<string>() == partId);

    private static string Cut(string text) => text.Length <= 120 ? text : text[..60] + "…" + text[^60..];

    private void RecordShown(string partId)
    {
        foreach (var parts in _parts.Values)
        {
            if (parts.TryGetValue(partId, out var part))
            {
                Record(partId, part);
            }
        }
    }

    private void RecordAllShown()
    {
        foreach (var part in Parts)
        {
            if (part["id"]?.GetValue<string>() is { } id)
            {
                Record(id, part);
            }
        }
    }

    private void Record(string partId, JsonObject part)
    {
        foreach (var field in StreamedFields)
        {
            if (FieldText(part, field) is { } text)
            {
                _shown.Add(new ShownText(partId, field, text, GapsOf(partId, field).ToArray()));
            }
        }
    }

    /// <summary>Every part, by message then part id.</summary>
    public IEnumerable<JsonObject> Parts => _parts.Keys.SelectMany(id => _parts[id].Values);

    public IEnumerable<JsonObject> PartsOfType(string type) => Parts.Where(p => p["type"]?.GetValue<string>() == type);

    /// <summary>
    /// The text of every text part of every message, in order, one line per part (a part known only from its deltas
    /// has no type yet: it counts as text).
    /// </summary>
    public string AllText() => JoinText(Parts.Where(p => (p["type"]?.GetValue<string>() ?? "text") == "text"));

    public static string JoinText(IEnumerable<JsonObject> parts)
    {
        var text = new StringBuilder();
        foreach (var part in parts)
        {
            text.Append(part["id"]!.GetValue<string>()).Append(": ").Append(part["text"]?.GetValue<string>() ?? "").Append('\n');
        }

        return text.ToString();
    }

    /// <summary>
    /// Every streamed field of every part of opencode's own <c>GET /session/{id}/message</c> answer: (part id, field
    /// path) → text.
    /// </summary>
    public static Dictionary<(string PartId, string Field), string> FinalFields(JsonElement storedMessages)
    {
        var final = new Dictionary<(string, string), string>();
        foreach (var part in storedMessages.EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()))
        {
            var node = (JsonObject)JsonNode.Parse(part.GetRawText())!;
            foreach (var field in StreamedFields)
            {
                if (FieldText(node, field) is { } text)
                {
                    final[(node["id"]!.GetValue<string>(), field)] = text;
                }
            }
        }

        return final;
    }

    /// <summary>
    /// What the client must hold against opencode's stored messages: every streamed field of every part byte-identical,
    /// no moment that showed other than a prefix of the final text (or pieces of it at gap marks), no handle misused.
    /// Empty when all holds.
    /// </summary>
    public List<string> Mismatches(JsonElement storedMessages)
    {
        var final = FinalFields(storedMessages);
        var problems = ShownViolations((part, field) => final.GetValueOrDefault((part, field)));
        problems.AddRange(HandleViolations);
        foreach (var ((partId, field), text) in final)
        {
            if (FieldText(Part(partId), field) is var held && held != text)
            {
                problems.Add($"{partId} {field}: holds {(held is null ? "nothing" : $"{held.Length} chars")}, opencode {text.Length}");
            }
        }

        return problems;
    }

    /// <summary>The same rendering of opencode's own <c>GET /session/{id}/message</c> answer.</summary>
    public static string AllText(JsonElement storedMessages)
    {
        var parts = new List<JsonObject>();
        foreach (var message in storedMessages.EnumerateArray().OrderBy(m => m.GetProperty("info").GetProperty("id").GetString(), StringComparer.Ordinal))
        {
            foreach (var part in message.GetProperty("parts").EnumerateArray().OrderBy(p => p.GetProperty("id").GetString(), StringComparer.Ordinal))
            {
                if (part.GetProperty("type").GetString() == "text")
                {
                    parts.Add((JsonObject)JsonNode.Parse(part.GetRawText())!);
                }
            }
        }

        return JoinText(parts);
    }

    private SortedDictionary<string, JsonObject> PartsOf(string messageId)
    {
        if (!_parts.TryGetValue(messageId, out var parts))
        {
            parts = new SortedDictionary<string, JsonObject>(StringComparer.Ordinal);
            _parts[messageId] = parts;
        }

        return parts;
    }
}

/// <summary>The recovery invariant for one part's text (README, client rules: gaps).</summary>
public static class TextInvariant
{
    /// <summary>
    /// True when <paramref name="shown"/>, cut at <paramref name="gaps"/>, is a sequence of pieces found in
    /// <paramref name="final"/> in that order, the first piece at its start (no gaps: a prefix).
    /// </summary>
    public static bool Holds(string shown, IReadOnlyList<int> gaps, string final)
    {
        var cuts = gaps.Where(g => g >= 0 && g <= shown.Length).Distinct().Order().ToList();
        var start = 0;
        var position = 0;
        for (var i = 0; i <= cuts.Count; i++)
        {
            var end = i < cuts.Count ? cuts[i] : shown.Length;
            var piece = shown[start..end];
            if (i == 0 && (cuts.Count == 0 || cuts[0] > 0))
            {
                if (!final.StartsWith(piece, StringComparison.Ordinal))
                {
                    return false;
                }

                position = piece.Length;
            }
            else
            {
                var found = final.IndexOf(piece, position, StringComparison.Ordinal);
                if (found < 0)
                {
                    return false;
                }

                position = found + piece.Length;
            }

            start = end;
        }

        return true;
    }
}
