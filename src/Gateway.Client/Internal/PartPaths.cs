using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpencodeGateway.Client.Internal;

/// <summary>Streamed fields are dot-separated paths into a part (<c>text</c>, <c>state.metadata.output</c>).</summary>
internal static class PartPaths
{
    /// <summary>The string at <paramref name="path"/> of <paramref name="part"/>, or null when there is none.</summary>
    public static string? Get(JsonElement? part, string path)
    {
        if (part is not { ValueKind: JsonValueKind.Object } node)
        {
            return null;
        }

        foreach (var name in path.Split('.'))
        {
            if (node.ValueKind != JsonValueKind.Object || !node.TryGetProperty(name, out node))
            {
                return null;
            }
        }

        return node.ValueKind == JsonValueKind.String ? node.GetString() : null;
    }

    /// <summary>Sets the string at <paramref name="path"/>, creating the objects on the way.</summary>
    public static void Set(JsonObject part, string path, string value)
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
}
