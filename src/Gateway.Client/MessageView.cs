using System.Collections.Immutable;
using System.Text.Json;

namespace OpencodeGateway.Client;

/// <summary>One message as the client holds it (immutable): opencode's message info and its parts, ordered by id.</summary>
public sealed class MessageView
{
    internal MessageView(string id, JsonElement info, ImmutableList<PartView> parts)
    {
        Id = id;
        Info = info;
        PartList = parts;
        Role = info.ValueKind == JsonValueKind.Object && info.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String
            ? role.GetString()
            : null;
    }

    public string Id { get; }

    /// <summary>opencode's message info (<c>role</c>, <c>time</c>, <c>finish</c>, <c>error</c>, <c>tokens</c>, <c>cost</c>, …).</summary>
    public JsonElement Info { get; }

    /// <summary><c>user</c> or <c>assistant</c>; null for a message known so far only from its parts.</summary>
    public string? Role { get; }

    /// <summary>The parts, ordered by id (opencode's ids sort by creation).</summary>
    public IReadOnlyList<PartView> Parts => PartList;

    internal ImmutableList<PartView> PartList { get; }

    internal MessageView WithInfo(JsonElement info) => new(Id, info, PartList);

    internal MessageView WithParts(ImmutableList<PartView> parts) => new(Id, Info, parts);
}
