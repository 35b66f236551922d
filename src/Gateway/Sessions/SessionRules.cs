using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Sessions;

/// <summary>Limits and rules of a session record's title, workspace, tags and metadata; errors name the field.</summary>
internal static class SessionRules
{
    public const int MaxTitleLength = 512;
    public const int MaxTags = 32;
    public const int MaxTagLength = 64;
    public const int MaxMetadataBytes = 16 * 1024;
    public const int MaxQueryLength = 200;
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;

    public static void ValidateTitle(string? title, string field = "title")
    {
        if (title is null)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(title))
        {
            throw GatewayException.Invalid(field, "must not be blank.");
        }

        if (title.Length > MaxTitleLength)
        {
            throw GatewayException.Invalid(field, $"must be at most {MaxTitleLength} characters.");
        }

        RequireWellFormed(title, field);
    }

    /// <summary>
    /// Refuses text that is not well-formed UTF-16 (a lone surrogate, which JSON's <c>\ud800</c> escape can carry): it
    /// can be neither stored as UTF-8 nor sent on to opencode.
    /// </summary>
    public static void RequireWellFormed(string text, string field)
    {
        if (!IsWellFormed(text))
        {
            throw GatewayException.Invalid(field, "must be valid Unicode text (it holds a lone surrogate).");
        }
    }

    public static bool IsWellFormed(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// A JSON string's text, refused like <see cref="RequireWellFormed(string, string)"/> when it is not well-formed (the
    /// reader throws on a lone surrogate's escape).
    /// </summary>
    public static string ReadString(JsonElement value, string field)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException) when (value.ValueKind == JsonValueKind.String)
        {
            throw GatewayException.Invalid(field, "must be valid Unicode text (it holds a lone surrogate).");
        }
    }

    /// <summary>Every string and member name of a JSON value is well-formed text (see <see cref="RequireWellFormed"/>).</summary>
    private static void RequireWellFormed(JsonElement value, string field)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                RequireWellFormed(ReadString(value, field), field);
                break;
            case JsonValueKind.Array:
                foreach (var item in value.EnumerateArray())
                {
                    RequireWellFormed(item, field);
                }

                break;
            case JsonValueKind.Object:
                foreach (var member in value.EnumerateObject())
                {
                    string name;
                    try
                    {
                        name = member.Name;
                    }
                    catch (InvalidOperationException)
                    {
                        throw GatewayException.Invalid(field, "must be valid Unicode text (a member name holds a lone surrogate).");
                    }

                    RequireWellFormed(name, field);
                    RequireWellFormed(member.Value, field);
                }

                break;
        }
    }

    public static void ValidateWorkspace(string? workspace, string field = "workspace")
    {
        if (workspace is not null && !Identifiers.IsValidWorkspace(workspace))
        {
            throw GatewayException.Invalid(field, Identifiers.WorkspaceRule + ".");
        }
    }

    /// <summary>The tags without duplicates, in their order; at most 32 of 1–64 characters.</summary>
    public static IReadOnlyList<string> NormalizeTags(IReadOnlyList<string?>? tags, string field = "tags")
    {
        if (tags is null)
        {
            return [];
        }

        if (tags.Count > MaxTags)
        {
            throw GatewayException.Invalid(field, $"at most {MaxTags} tags are allowed (got {tags.Count}).", GatewayErrorCodes.PayloadTooLarge);
        }

        var result = new List<string>(tags.Count);
        for (var i = 0; i < tags.Count; i++)
        {
            var tag = tags[i];
            if (string.IsNullOrWhiteSpace(tag) || tag.Any(char.IsControl) || !IsWellFormed(tag))
            {
                throw GatewayException.Invalid($"{field}[{i}]", "must be a non-blank string of valid Unicode without control characters.");
            }

            if (tag.Length > MaxTagLength)
            {
                throw GatewayException.Invalid($"{field}[{i}]", $"must be at most {MaxTagLength} characters.", GatewayErrorCodes.PayloadTooLarge);
            }

            if (!result.Contains(tag, StringComparer.Ordinal))
            {
                result.Add(tag);
            }
        }

        return result;
    }

    /// <summary>A metadata object given whole (create, adopt): must be a JSON object within the size limit.</summary>
    public static string InitialMetadata(JsonElement? metadata, string field = "metadata")
    {
        if (metadata is null || metadata.Value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return "{}";
        }

        if (metadata.Value.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid(field, "must be a JSON object.");
        }

        RequireWellFormed(metadata.Value, field);

        return Serialize(JsonNode.Parse(metadata.Value.GetRawText())!.AsObject(), field);
    }

    /// <summary>
    /// Applies a JSON Merge Patch (RFC 7386) to the stored metadata object: members of the patch set to null are
    /// removed, objects merge recursively, anything else (arrays included) replaces the value.
    /// </summary>
    public static string ApplyMergePatch(string currentJson, JsonElement patch, string field = "metadata")
    {
        if (patch.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid(field, "must be a JSON object (a JSON Merge Patch of the metadata).");
        }

        RequireWellFormed(patch, field);
        var target = JsonNode.Parse(currentJson) as JsonObject ?? new JsonObject();
        var merged = Merge(target, JsonNode.Parse(patch.GetRawText()));
        return Serialize(merged!.AsObject(), field);
    }

    private static JsonNode? Merge(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        var targetObject = target as JsonObject ?? new JsonObject();
        foreach (var (name, value) in patchObject)
        {
            if (value is null)
            {
                targetObject.Remove(name);
                continue;
            }

            var existing = targetObject.TryGetPropertyValue(name, out var current) ? current : null;
            var next = Merge(existing?.DeepClone(), value);
            targetObject[name] = next;
        }

        return targetObject;
    }

    private static string Serialize(JsonObject value, string field)
    {
        var json = value.ToJsonString();
        var bytes = Encoding.UTF8.GetByteCount(json);
        if (bytes > MaxMetadataBytes)
        {
            throw GatewayException.Invalid(field, $"is {bytes} bytes serialized; at most {MaxMetadataBytes} are allowed.",
                GatewayErrorCodes.PayloadTooLarge);
        }

        return json;
    }
}
