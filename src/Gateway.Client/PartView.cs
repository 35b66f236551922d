using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>
/// One part of a message as the client holds it (immutable): opencode's part object with its streamed fields (a text
/// part's <c>text</c>, a tool's <c>state.metadata.output</c> and <c>state.output</c>) as far as they streamed, and the
/// gap marks in them. A change makes a new <see cref="PartView"/>.
/// </summary>
public sealed class PartView
{
    private static readonly ImmutableDictionary<string, IReadOnlyList<int>> NoGaps = ImmutableDictionary.Create<string, IReadOnlyList<int>>(StringComparer.Ordinal);
    private StrongBox<JsonElement>? _json;

    internal PartView(string id, string messageId, JsonElement? stated, ImmutableDictionary<string, string> fields,
        ImmutableDictionary<string, IReadOnlyList<int>>? gaps)
    {
        Id = id;
        MessageId = messageId;
        Stated = stated;
        Fields = fields;
        GapMap = gaps ?? NoGaps;
        Type = stated is { ValueKind: JsonValueKind.Object } part && part.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
            ? type.GetString()
            : null;
    }

    public string Id { get; }

    public string MessageId { get; }

    /// <summary>
    /// opencode's part type (<c>text</c>, <c>reasoning</c>, <c>tool</c>, <c>file</c>, <c>step-start</c>, …); null for a part
    /// known so far only from its deltas (it streams text: show it as text).
    /// </summary>
    public string? Type { get; }

    /// <summary>The <c>text</c> of a text or reasoning part as far as it streamed (null when the part has none).</summary>
    public string? Text => Field(StreamedFields.Text);

    /// <summary>
    /// Where the streamed fields' text is not continuous: field path → sorted UTF-16 offsets. Show a mark (e.g. <c>…</c>)
    /// at each one and never present the pieces as one text (client rule 7).
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<int>> Gaps => GapMap;

    /// <summary>
    /// The whole part as JSON: opencode's part object with the streamed fields as the client holds them (built when first
    /// asked for).
    /// </summary>
    public JsonElement Json
    {
        get
        {
            // Views are read from any thread: the element is built once and published whole.
            if (Volatile.Read(ref _json) is { } built)
            {
                return built.Value;
            }

            Interlocked.CompareExchange(ref _json, new StrongBox<JsonElement>(BuildJson()), null);
            return _json.Value;
        }
    }

    /// <summary>opencode's part object as last stated (a streamed field in it may be behind <see cref="Field"/>).</summary>
    internal JsonElement? Stated { get; }

    /// <summary>The streamed fields the client holds, by path.</summary>
    internal ImmutableDictionary<string, string> Fields { get; }

    internal ImmutableDictionary<string, IReadOnlyList<int>> GapMap { get; }

    /// <summary>A streamed field's text (<c>text</c>, <c>state.metadata.output</c>, <c>state.output</c>), or null.</summary>
    public string? Field(string path) => Fields.TryGetValue(path, out var text) ? text : null;

    /// <summary>The gap offsets of a streamed field (empty when it is continuous).</summary>
    public IReadOnlyList<int> GapsOf(string path = StreamedFields.Text) => GapMap.TryGetValue(path, out var gaps) ? gaps : [];

    /// <summary>
    /// The text with a mark at every gap: what a plain-text client shows (<paramref name="mark"/> never appears in what
    /// opencode sent, so a reader sees where text is missing).
    /// </summary>
    public string? Display(string path = StreamedFields.Text, string mark = "…")
    {
        if (Field(path) is not { } text)
        {
            return null;
        }

        var gaps = GapsOf(path);
        if (gaps.Count == 0)
        {
            return text;
        }

        var shown = new System.Text.StringBuilder(text.Length + gaps.Count * mark.Length);
        var at = 0;
        foreach (var gap in gaps.Where(g => g >= 0 && g <= text.Length))
        {
            shown.Append(text, at, gap - at).Append(mark);
            at = gap;
        }

        return shown.Append(text, at, text.Length - at).ToString();
    }

    internal PartView WithField(string path, string text) => new(Id, MessageId, Stated, Fields.SetItem(path, text), GapMap);

    internal PartView WithGaps(ImmutableDictionary<string, IReadOnlyList<int>> gaps) => new(Id, MessageId, Stated, Fields, gaps);

    private JsonElement BuildJson()
    {
        var part = Stated is { ValueKind: JsonValueKind.Object } stated
            ? JsonObject.Create(stated)!
            : new JsonObject { ["id"] = Id, ["messageID"] = MessageId };
        foreach (var (path, text) in Fields)
        {
            PartPaths.Set(part, path, text);
        }

        return JsonSerializer.SerializeToElement(part);
    }
}
