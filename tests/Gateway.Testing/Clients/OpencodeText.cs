using System.Text;
using System.Text.Json;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>
/// What the tests compare a client's view with: opencode's own <c>GET /session/{id}/message</c>, rendered the same way.
/// </summary>
public static class OpencodeText
{
    /// <summary>The streamed fields a client shows: text (and reasoning) and a tool's output.</summary>
    public static readonly string[] StreamedFieldPaths = [StreamedFields.Text, .. StreamedFields.Tool];

    /// <summary>
    /// The text of every text part of every message, in order, one line per part (a part known only from its deltas has
    /// no type yet: it counts as text).
    /// </summary>
    public static string AllText(SessionView view) =>
        Lines(view.Messages.SelectMany(m => m.Parts).Where(p => (p.Type ?? "text") == "text").Select(p => (p.Id, p.Text)));

    /// <summary>The same rendering of opencode's stored messages.</summary>
    public static string AllText(JsonElement storedMessages) =>
        Lines(storedMessages.EnumerateArray()
            .OrderBy(m => m.GetProperty("info").GetProperty("id").GetString(), StringComparer.Ordinal)
            .SelectMany(m => m.GetProperty("parts").EnumerateArray().OrderBy(p => p.GetProperty("id").GetString(), StringComparer.Ordinal))
            .Where(p => p.GetProperty("type").GetString() == "text")
            .Select(p => (p.GetProperty("id").GetString()!, p.TryGetProperty("text", out var t) ? t.GetString() : null)));

    /// <summary>Every streamed field of every stored part: (part id, field path) → text.</summary>
    public static Dictionary<(string PartId, string Field), string> FinalFields(JsonElement storedMessages)
    {
        var final = new Dictionary<(string, string), string>();
        foreach (var part in storedMessages.EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()))
        {
            foreach (var field in StreamedFieldPaths)
            {
                if (FieldOf(part, field) is { } text)
                {
                    final[(part.GetProperty("id").GetString()!, field)] = text;
                }
            }
        }

        return final;
    }

    /// <summary>The final <c>text</c> of every stored part that has one, by part id.</summary>
    public static Dictionary<string, string> FinalTexts(JsonElement storedMessages) =>
        FinalFields(storedMessages).Where(f => f.Key.Field == StreamedFields.Text).ToDictionary(f => f.Key.PartId, f => f.Value);

    /// <summary>The parts of a type (<c>tool</c>, <c>file</c>, …) of every message held.</summary>
    public static IEnumerable<PartView> PartsOfType(this SessionView view, string type) => view.Parts.Where(p => p.Type == type);

    /// <summary>The ids of pending requests (permissions, questions).</summary>
    public static IEnumerable<string> Ids(this IReadOnlyList<JsonElement> requests) => requests.Select(r => r.GetProperty("id").GetString()!);

    /// <summary>A tool part's <c>state.status</c>.</summary>
    public static string? ToolStatus(this PartView part) =>
        part.Json.TryGetProperty("state", out var state) && state.TryGetProperty("status", out var status) ? status.GetString() : null;

    private static string? FieldOf(JsonElement part, string path)
    {
        var node = part;
        foreach (var name in path.Split('.'))
        {
            if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty(name, out node))
            {
                return null;
            }
        }

        return node.ValueKind == JsonValueKind.String ? node.GetString() : null;
    }

    private static string Lines(IEnumerable<(string Id, string? Text)> parts)
    {
        var text = new StringBuilder();
        foreach (var (id, partText) in parts)
        {
            text.Append(id).Append(": ").Append(partText ?? "").Append('\n');
        }

        return text.ToString();
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
