using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpencodeGateway.Testing;

/// <summary>
/// A client's view of one session, built by the rules a gateway client follows (README, "Client rules"):
/// take a snapshot, then apply events in seq order; ignore duplicates; report gaps and new epochs.
/// </summary>
public sealed class SessionModel
{
    private readonly SortedDictionary<string, JsonObject> _messages = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, SortedDictionary<string, JsonObject>> _parts = new(StringComparer.Ordinal);

    public long Epoch { get; private set; }
    public long Seq { get; private set; }
    public bool HasSnapshot { get; private set; }
    public string? StatusType { get; private set; }
    public Dictionary<string, JsonObject> Permissions { get; } = new(StringComparer.Ordinal);
    public List<string> Errors { get; } = [];

    public enum Outcome { Applied, Duplicate, Gap, NewEpoch }

    public void ApplySnapshot(JsonElement snapshot)
    {
        _messages.Clear();
        _parts.Clear();
        Permissions.Clear();
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

        foreach (var permission in snapshot.GetProperty("permissions").EnumerateArray())
        {
            var obj = (JsonObject)JsonNode.Parse(permission.GetRawText())!;
            Permissions[obj["id"]!.GetValue<string>()] = obj;
        }

        HasSnapshot = true;
    }

    /// <summary>Applies recovered events of a join result (the position they start from must be ours).</summary>
    public void ApplyRecovered(JsonElement joinResult)
    {
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
        switch (type)
        {
            case "part.updated":
            {
                var part = (JsonObject)JsonNode.Parse(evt.GetProperty("part").GetRawText())!;
                var messageId = evt.GetProperty("messageId").GetString()!;
                var partId = evt.GetProperty("partId").GetString()!;
                var parts = PartsOf(messageId);
                if (!part.ContainsKey("text") && parts.TryGetValue(partId, out var old) && old["text"] is { } oldText)
                {
                    part["text"] = oldText.GetValue<string>();
                }

                parts[partId] = part;
                break;
            }
            case "part.delta":
            {
                var messageId = evt.GetProperty("messageId").GetString()!;
                var partId = evt.GetProperty("partId").GetString()!;
                var field = evt.GetProperty("field").GetString()!;
                var offset = evt.GetProperty("offset").GetInt32();
                var delta = evt.GetProperty("delta").GetString()!;
                var parts = PartsOf(messageId);
                if (!parts.TryGetValue(partId, out var part))
                {
                    part = new JsonObject { ["id"] = partId, ["messageID"] = messageId };
                    parts[partId] = part;
                }

                var current = part[field]?.GetValue<string>() ?? "";
                if (offset > current.Length)
                {
                    // Text is missing that no replay can bring back: only a snapshot can.
                    return Outcome.NewEpoch;
                }

                if (offset + delta.Length > current.Length)
                {
                    part[field] = current + delta[(current.Length - offset)..];
                }

                break;
            }
            case "part.removed":
                foreach (var parts in _parts.Values)
                {
                    parts.Remove(evt.GetProperty("partId").GetString()!);
                }

                break;
            case "message.updated":
                _messages[evt.GetProperty("messageId").GetString()!] = (JsonObject)JsonNode.Parse(evt.GetProperty("info").GetRawText())!;
                break;
            case "message.removed":
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
        }

        Seq = seq;
        return Outcome.Applied;
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
