using System.Text.Json;

namespace OpencodeGateway.Ingest;

/// <summary>
/// Maps one SSE data line of opencode (<c>/global/event</c> envelope <c>{directory, project, payload}</c>, or a bare
/// <c>/event</c> event <c>{id, type, properties}</c>) to an <see cref="UpstreamEvent"/>. Never throws on bad input.
/// </summary>
internal static class OpencodeEventNormalizer
{
    public static UpstreamEvent Normalize(ReadOnlySpan<byte> data)
    {
        // Most events of an answer are text deltas: read those straight off the bytes (no JsonDocument, ids reused).
        if (TryReadDelta(data, out var delta))
        {
            return delta;
        }

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
            case "question.asked":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.QuestionAsked, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    RequestId = RequiredString(props, "id"),
                    Payload = props.Clone(),
                };
            case "question.replied":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.QuestionReplied, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    RequestId = RequiredString(props, "requestID"),
                    Payload = props.TryGetProperty("answers", out var answers) && answers.ValueKind == JsonValueKind.Array
                        ? answers.Clone() : EmptyArray,
                };
            case "question.rejected":
                return new UpstreamEvent
                {
                    Kind = UpstreamEventKind.QuestionRejected, Type = type, Size = size,
                    SessionId = RequiredString(props, "sessionID"),
                    RequestId = RequiredString(props, "requestID"),
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
                    ParentId = OptionalString(info, "parentID"),
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

    // The ids of the previous delta: a stream of deltas repeats them, so equal bytes reuse the string.
    [ThreadStatic] private static string? t_session;
    [ThreadStatic] private static string? t_message;
    [ThreadStatic] private static string? t_part;

    /// <summary>
    /// Fast path for <c>{..., "payload": {"id", "type": "message.part.delta", "properties": {...}}}</c> with
    /// <c>type</c> before <c>properties</c> (opencode's order). Anything else, or anything unusual, returns false and
    /// goes the general way, which also reports malformed input.
    /// </summary>
    private static bool TryReadDelta(ReadOnlySpan<byte> data, out UpstreamEvent evt)
    {
        evt = null!;
        if (data.IndexOf("\"message.part.delta\""u8) < 0)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(data);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            string? session = null, message = null, part = null, field = null, delta = null;
            var sawPayload = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("payload"u8))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }

                if (sawPayload || !reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                {
                    return false;
                }

                sawPayload = true;
                var typeSeen = false;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("type"u8))
                    {
                        if (!reader.Read() || reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("message.part.delta"u8))
                        {
                            return false;
                        }

                        typeSeen = true;
                    }
                    else if (reader.ValueTextEquals("properties"u8))
                    {
                        if (!typeSeen || !reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                        {
                            return false;
                        }

                        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                        {
                            if (reader.ValueTextEquals("sessionID"u8)) { if (!ReadId(ref reader, ref t_session, out session)) return false; }
                            else if (reader.ValueTextEquals("messageID"u8)) { if (!ReadId(ref reader, ref t_message, out message)) return false; }
                            else if (reader.ValueTextEquals("partID"u8)) { if (!ReadId(ref reader, ref t_part, out part)) return false; }
                            else if (reader.ValueTextEquals("field"u8))
                            {
                                if (!reader.Read() || reader.TokenType != JsonTokenType.String) return false;
                                field = reader.ValueTextEquals("text"u8) ? "text" : reader.GetString();
                            }
                            else if (reader.ValueTextEquals("delta"u8))
                            {
                                if (!reader.Read() || reader.TokenType != JsonTokenType.String) return false;
                                delta = reader.GetString();
                            }
                            else
                            {
                                reader.Read();
                                reader.Skip();
                            }
                        }
                    }
                    else
                    {
                        reader.Read();
                        reader.Skip();
                    }
                }

                if (!typeSeen)
                {
                    return false;
                }
            }

            // The whole line must be one well-formed value (trailing bytes throw below).
            if (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != 0 || reader.Read()
                || session is null || message is null || part is null || delta is null)
            {
                return false;
            }

            evt = new UpstreamEvent
            {
                Kind = UpstreamEventKind.PartDelta, Type = "message.part.delta", Size = data.Length,
                SessionId = session, MessageId = message, PartId = part, Field = field ?? "text", Delta = delta,
            };
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool ReadId(ref Utf8JsonReader reader, ref string? cache, out string? value)
    {
        value = null;
        if (!reader.Read() || reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        if (cache is null || !reader.ValueTextEquals(cache))
        {
            cache = reader.GetString();
        }

        value = cache;
        return true;
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
