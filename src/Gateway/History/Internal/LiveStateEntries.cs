using System.Text.Json;
using System.Text.Json.Serialization;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.History.Internal;

/// <summary>
/// What changed in a session's live state since the last time it was asked, as entries of a flat key/value store (a
/// Redis hash) plus texts (one value per streamed part field, appended to as deltas arrive): what the stream holder
/// writes next to each event so that any node reads the same state (<see cref="LiveStateEntries"/>).
/// </summary>
internal sealed class LiveChanges
{
    /// <summary>Replace the whole state: <see cref="Sets"/> and <see cref="TextSets"/> hold all of it.</summary>
    public bool Full { get; init; }
    public List<(string Field, string Value)> Sets { get; } = [];
    public List<string> Deletes { get; } = [];
    /// <summary>Texts replaced, by <see cref="LiveStateEntries.TextName"/>.</summary>
    public List<(string Text, string Value)> TextSets { get; } = [];
    /// <summary>Text appended, in order.</summary>
    public List<(string Text, string Value)> TextAppends { get; } = [];

    public bool IsEmpty => !Full && Sets.Count == 0 && Deletes.Count == 0 && TextSets.Count == 0 && TextAppends.Count == 0;
}

/// <summary>
/// The encoding of a session's live state as entries: <c>i</c> session info, <c>st</c> status, <c>td</c> todos,
/// <c>m:{id}</c> a message, <c>p:{id}</c> a part (without its streamed fields), <c>f:{part}:{field}</c> a streamed field's
/// gaps and handle (its text is stored apart, named <c>{part}:{field}</c>), <c>pp:{id}</c> a pending permission request,
/// <c>pr:{id}</c> a replied one, <c>qp:{id}</c> a pending question, <c>qa:{id}</c> an answered one, <c>c:{id}</c> a
/// descendant session.
/// </summary>
internal static class LiveStateEntries
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public const string Info = "i";
    public const string Status = "st";
    public const string Todos = "td";

    public static string MessageField(string id) => "m:" + id;
    public static string PartField(string id) => "p:" + id;
    public static string TextField(string partId, string field) => $"f:{partId}:{field}";
    public static string TextName(string partId, string field) => $"{partId}:{field}";
    public static string PendingField(string id) => "pp:" + id;
    public static string RepliedField(string id) => "pr:" + id;
    public static string PendingQuestionField(string id) => "qp:" + id;
    public static string AnsweredQuestionField(string id) => "qa:" + id;
    public static string ChildField(string id) => "c:" + id;

    public static string Encode(ChildSession child) => JsonSerializer.Serialize(child, Json);

    public static string Encode(LiveMessageImage message) => JsonSerializer.Serialize(new MessageEntry(message.Info, message.Removed ? true : null), Json);

    public static string Encode(LivePartImage part) =>
        JsonSerializer.Serialize(new PartEntry(part.MessageId, part.Json, part.JsonStale ? true : null, part.Removed ? true : null), Json);

    public static string EncodeField(IReadOnlyList<int> gaps, int handle) => JsonSerializer.Serialize(new FieldEntry(gaps, handle), Json);

    public static string Encode(JsonElement value) => value.GetRawText();

    /// <summary>Every entry of an image (a full rewrite).</summary>
    public static LiveChanges FullWrite(LiveSessionImage image)
    {
        var changes = new LiveChanges { Full = true };
        if (image.SessionInfo is { } info)
        {
            changes.Sets.Add((Info, Encode(info)));
        }

        if (image.Status is { } status)
        {
            changes.Sets.Add((Status, Encode(status)));
        }

        if (image.Todos is { } todos)
        {
            changes.Sets.Add((Todos, Encode(todos)));
        }

        foreach (var (id, message) in image.Messages)
        {
            changes.Sets.Add((MessageField(id), Encode(message)));
        }

        foreach (var (id, part) in image.Parts)
        {
            changes.Sets.Add((PartField(id), Encode(part)));
            foreach (var field in part.Fields)
            {
                changes.Sets.Add((TextField(id, field.Name), EncodeField(field.Gaps, field.Handle)));
                changes.TextSets.Add((TextName(id, field.Name), field.Text));
            }
        }

        WriteRequests(changes, image.Permissions, PendingField, RepliedField);
        WriteRequests(changes, image.Questions, PendingQuestionField, AnsweredQuestionField);
        foreach (var child in image.Children)
        {
            changes.Sets.Add((ChildField(child.Id), Encode(child)));
        }

        return changes;
    }

    private static void WriteRequests(LiveChanges changes, LiveRequestsImage requests, Func<string, string> pending,
        Func<string, string> answered)
    {
        foreach (var (id, request) in requests.Pending)
        {
            changes.Sets.Add((pending(id), Encode(request)));
        }

        foreach (var id in requests.Answered)
        {
            changes.Sets.Add((answered(id), "1"));
        }
    }

    /// <summary>The image the entries (and texts, by <see cref="TextName"/>) describe, at (<paramref name="epoch"/>, <paramref name="seq"/>).</summary>
    public static LiveSessionImage Decode(SessionKey key, long epoch, long seq, IReadOnlyDictionary<string, string> entries,
        IReadOnlyDictionary<string, string> texts)
    {
        JsonElement? info = null, status = null, todos = null;
        var messages = new Dictionary<string, LiveMessageImage>(StringComparer.Ordinal);
        var parts = new Dictionary<string, PartEntry>(StringComparer.Ordinal);
        var fields = new Dictionary<string, List<LiveFieldImage>>(StringComparer.Ordinal);
        var pending = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var replied = new HashSet<string>(StringComparer.Ordinal);
        var pendingQuestions = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var answeredQuestions = new HashSet<string>(StringComparer.Ordinal);
        var children = new List<ChildSession>();
        foreach (var (name, value) in entries)
        {
            switch (name)
            {
                case Info:
                    info = Parse(value);
                    continue;
                case Status:
                    status = Parse(value);
                    continue;
                case Todos:
                    todos = Parse(value);
                    continue;
            }

            var colon = name.IndexOf(':');
            if (colon < 0)
            {
                continue; // bookkeeping of the store (epoch, seq, …)
            }

            var id = name[(colon + 1)..];
            switch (name[..colon])
            {
                case "m":
                    var message = JsonSerializer.Deserialize<MessageEntry>(value, Json)!;
                    messages[id] = new LiveMessageImage(message.Info, message.Removed == true);
                    break;
                case "p":
                    parts[id] = JsonSerializer.Deserialize<PartEntry>(value, Json)!;
                    break;
                case "f":
                    var split = id.LastIndexOf(':');
                    var partId = id[..split];
                    var field = id[(split + 1)..];
                    // (before handles the entry was the gaps alone: handle 0, given anew by LiveSession.FromImage)
                    var entry = value.StartsWith('[') ? new FieldEntry(JsonSerializer.Deserialize<int[]>(value, Json), 0)
                        : JsonSerializer.Deserialize<FieldEntry>(value, Json)!;
                    var text = texts.TryGetValue(TextName(partId, field), out var t) ? t : "";
                    (fields.TryGetValue(partId, out var list) ? list : fields[partId] = [])
                        .Add(new LiveFieldImage(field, text, entry.G ?? []) { Handle = entry.H });
                    break;
                case "pp":
                    pending[id] = Parse(value);
                    break;
                case "pr":
                    replied.Add(id);
                    break;
                case "qp":
                    pendingQuestions[id] = Parse(value);
                    break;
                case "qa":
                    answeredQuestions.Add(id);
                    break;
                case "c":
                    children.Add(JsonSerializer.Deserialize<ChildSession>(value, Json)!);
                    break;
            }
        }

        var partImages = new Dictionary<string, LivePartImage>(parts.Count, StringComparer.Ordinal);
        foreach (var (id, part) in parts)
        {
            partImages[id] = new LivePartImage(part.M, part.J, part.S == true, part.R == true,
                fields.TryGetValue(id, out var f) ? f : []);
        }

        return new LiveSessionImage(key, epoch, seq, info, status, todos, messages, partImages, new LiveRequestsImage(pending, replied))
        {
            Questions = new LiveRequestsImage(pendingQuestions, answeredQuestions), Children = children,
        };
    }

    private static JsonElement Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private sealed record MessageEntry(JsonElement? Info, bool? Removed);

    /// <param name="M">message id</param>
    /// <param name="J">the part object without its streamed fields</param>
    /// <param name="S">the object is from an earlier epoch</param>
    /// <param name="R">removed</param>
    private sealed record PartEntry(string M, JsonElement? J, bool? S, bool? R);

    /// <param name="G">gap offsets</param>
    /// <param name="H">the field's handle (<see cref="Contracts.SessionEvent.Handle"/>)</param>
    private sealed record FieldEntry(IReadOnlyList<int>? G, int H);
}
