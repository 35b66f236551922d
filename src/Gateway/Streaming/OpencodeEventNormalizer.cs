using System.Text.Json;

namespace OpencodeGateway.Streaming;

/// <summary>
/// Maps one SSE data line of opencode (<c>/global/event</c> envelope <c>{directory, project, payload}</c>, or a bare
/// <c>/event</c> event <c>{id, type, properties}</c>) to an <see cref="UpstreamEvent"/>. Never throws on bad input.
/// </summary>
internal static class OpencodeEventNormalizer
{
    public static UpstreamEvent Normalize(ReadOnlySpan<byte> data)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(data);
            if (!JsonDocument.TryParseValue(ref reader, out var parsed) || parsed is null)
            {
                return UpstreamEvent.Malformed("empty data", data.Length);
            }

            document = parsed;
        }
        catch (JsonException e)
        {
            return UpstreamEvent.Malformed(e.Message, data.Length);
        }

        using (document)
        {
            try
            {
                return Normalize(document.RootElement, data.Length);
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException)
            {
                return UpstreamEvent.Malformed(e.Message, data.Length);
            }
        }
    }

    private static UpstreamEvent Normalize(JsonElement root, int size)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return UpstreamEvent.Malformed("event is not a JSON object", size);
        }

        var evt = root.TryGetProperty("payload", out var payload) && payload.ValueKind == JsonValueKind.Object ? payload : root;
        if (!evt.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
        {
            return UpstreamEvent.Malformed("event has no type", size);
        }

        var type = typeElement.GetString()!;
        switch (type)
        {
            case "server.heartbeat": return UpstreamEvent.Heartbeat;
            case "server.connected": return UpstreamEvent.ServerConnected;
        }

        if (!evt.TryGetProperty("properties", out var props) || props.ValueKind != JsonValueKind.Object)
        {
            // "sync" duplicates carry syncEvent instead of properties; everything else we know has properties.
            return UpstreamEvent.Ignored;
        }

        switch (type)
        {
            case "message.part.delta":
            {
                var field = OptionalString(props, "field") ?? "text";
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.PartDelta, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    MessageId = RequiredString(props, "messageID"),
                    PartId = RequiredString(props, "partID"),
                    Field = field,
                    Delta = RequiredString(props, "delta"),
                };
            }
            case "message.part.updated":
            {
                var part = RequiredObject(props, "part");
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.PartUpdated, Type = type, Size = size,
                    SessionId = OptionalString(props, "sessionID") ?? RequiredString(part, "sessionID"),
                    MessageId = RequiredString(part, "messageID"),
                    PartId = RequiredString(part, "id"),
                    Field = "text",
                    // Older opencode releases put the appended text next to the full part.
                    Delta = OptionalString(props, "delta"),
                    Payload = part.Clone(),
                };
            }
            case "message.part.removed":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.PartRemoved, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    MessageId = OptionalString(props, "messageID"),
                    PartId = RequiredString(props, "partID"),
                };
            case "message.updated":
            {
                var info = RequiredObject(props, "info");
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.MessageUpdated, Type = type, Size = size,
                    SessionId = OptionalString(props, "sessionID") ?? RequiredString(info, "sessionID"),
                    MessageId = RequiredString(info, "id"),
                    Payload = info.Clone(),
                };
            }
            case "message.removed":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.MessageRemoved, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    MessageId = RequiredString(props, "messageID"),
                };
            case "session.status":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.Status, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    Payload = RequiredObject(props, "status").Clone(),
                };
            case "session.idle":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.Status, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    Payload = IdleStatus,
                };
            case "session.error":
            {
                var sessionId = OptionalString(props, "sessionID");
                if (sessionId is null)
                {
                    return UpstreamEvent.Ignored; // errors not tied to a session (e.g. provider auth at boot)
                }

                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.Error, Type = type, Size = size, SessionId = sessionId,
                    Payload = props.TryGetProperty("error", out var error) ? error.Clone() : default,
                };
            }
            case "permission.asked":
            case "permission.updated":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.PermissionAsked, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    RequestId = RequiredString(props, "id"),
                    Payload = props.Clone(),
                };
            case "permission.replied":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.PermissionReplied, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    RequestId = OptionalString(props, "requestID") ?? RequiredString(props, "permissionID"),
                    Reply = OptionalString(props, "reply") ?? OptionalString(props, "response") ?? "",
                };
            case "todo.updated":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.TodoUpdated, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    Payload = props.TryGetProperty("todos", out var todos) ? todos.Clone() : EmptyArray,
                };
            case "session.updated":
            case "session.created":
            {
                var info = RequiredObject(props, "info");
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.SessionUpdated, Type = type, Size = size,
                    SessionId = OptionalString(props, "sessionID") ?? RequiredString(info, "id"),
                    Payload = info.Clone(),
                };
            }
            case "session.deleted":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.SessionDeleted, Type = type, Size = size,
                    SessionId = OptionalString(props, "sessionID") ?? RequiredString(RequiredObject(props, "info"), "id"),
                };
            default:
                return UpstreamEvent.Ignored;
        }
    }

    private static readonly JsonElement IdleStatus = JsonDocument.Parse("""{"type":"idle"}""").RootElement.Clone();
    private static readonly JsonElement EmptyArray = JsonDocument.Parse("[]").RootElement.Clone();

    private static string RequiredString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new FormatException($"'{name}' is missing or not a string");

    private static string? OptionalString(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static JsonElement RequiredObject(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
            ? value
            : throw new FormatException($"'{name}' is missing or not an object");
}
