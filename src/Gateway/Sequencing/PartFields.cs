using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Sequencing;

/// <summary>
/// The streamed fields of opencode's parts (<see cref="StreamedFields"/>), addressed by dot-separated paths into the part
/// object (<c>text</c>, <c>state.metadata.output</c>): read, removed and written back.
/// </summary>
internal static class PartFields
{
    /// <summary>The part's type (<c>text</c>, <c>reasoning</c>, <c>tool</c>, …), or null.</summary>
    public static string? TypeOf(JsonElement part) =>
        part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
            ? type.GetString()
            : null;

    public static bool IsTool(JsonElement part) =>
        part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.ValueEquals("tool"u8);

    /// <summary>The string at <paramref name="path"/>, or null when the path is absent or not a string.</summary>
    public static string? GetString(JsonElement obj, string path)
    {
        var current = obj;
        var start = 0;
        while (true)
        {
            var dot = path.IndexOf('.', start);
            var name = dot < 0 ? path.AsSpan(start) : path.AsSpan(start, dot - start);
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(name, out var next))
            {
                return null;
            }

            if (dot < 0)
            {
                return next.ValueKind == JsonValueKind.String ? next.GetString() : null;
            }

            current = next;
            start = dot + 1;
        }
    }

    /// <summary>
    /// The object without the members at <paramref name="paths"/> (objects on the way are kept, even when they end up
    /// empty). Returns <paramref name="obj"/> itself when none of them is there.
    /// </summary>
    public static JsonElement Without(JsonElement obj, IReadOnlyCollection<string> paths)
    {
        if (paths.Count == 0 || !paths.Any(p => GetString(obj, p) is not null))
        {
            return obj;
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteWithout(writer, obj, paths, prefix: "");
        }

        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }

    private static void WriteWithout(Utf8JsonWriter writer, JsonElement obj, IReadOnlyCollection<string> paths, string prefix)
    {
        writer.WriteStartObject();
        foreach (var property in obj.EnumerateObject())
        {
            var path = prefix + property.Name;
            if (paths.Contains(path) && property.Value.ValueKind == JsonValueKind.String)
            {
                continue;
            }

            if (property.Value.ValueKind == JsonValueKind.Object && paths.Any(p => p.StartsWith(path + ".", StringComparison.Ordinal)))
            {
                writer.WritePropertyName(property.Name);
                WriteWithout(writer, property.Value, paths, path + ".");
            }
            else
            {
                property.WriteTo(writer);
            }
        }

        writer.WriteEndObject();
    }

    /// <summary>Sets the string at <paramref name="path"/>, creating the objects on the way.</summary>
    public static void Set(JsonObject obj, string path, string value)
    {
        var current = obj;
        var names = path.Split('.');
        for (var i = 0; i < names.Length - 1; i++)
        {
            if (current[names[i]] is not JsonObject next)
            {
                next = new JsonObject();
                current[names[i]] = next;
            }

            current = next;
        }

        current[names[^1]] = value;
    }
}
