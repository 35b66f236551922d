using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using MessagePack;
using MessagePack.Formatters;

namespace OpencodeGateway.Contracts.Serialization;

/// <summary>
/// A contract type as its JSON form in MessagePack: serialised to JSON with <see cref="GatewayMessagePack.JsonOptions"/>
/// and written as the same map; read back the other way. One definition of the contract (its JSON attributes) serves
/// both protocols, so they cannot drift apart.
/// </summary>
internal sealed class JsonFormFormatter<T> : IMessagePackFormatter<T?> where T : class
{
    public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }

        JsonMessagePack.Write(ref writer, JsonSerializer.SerializeToElement(value, GatewayMessagePack.JsonOptions));
    }

    public T? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil())
        {
            return null;
        }

        var json = JsonMessagePack.ReadAsJson(ref reader, options);
        return JsonSerializer.Deserialize<T>(json.WrittenSpan, GatewayMessagePack.JsonOptions);
    }
}

/// <summary>A <see cref="JsonElement"/> as the MessagePack maps, arrays and values it holds.</summary>
internal sealed class JsonElementFormatter : IMessagePackFormatter<JsonElement>
{
    public static readonly JsonElementFormatter Instance = new();

    public void Serialize(ref MessagePackWriter writer, JsonElement value, MessagePackSerializerOptions options) =>
        JsonMessagePack.Write(ref writer, value);

    public JsonElement Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        var json = JsonMessagePack.ReadAsJson(ref reader, options);
        return JsonSerializer.Deserialize<JsonElement>(json.WrittenSpan);
    }
}

internal sealed class NullableJsonElementFormatter : IMessagePackFormatter<JsonElement?>
{
    public static readonly NullableJsonElementFormatter Instance = new();

    public void Serialize(ref MessagePackWriter writer, JsonElement? value, MessagePackSerializerOptions options) =>
        JsonMessagePack.Write(ref writer, value ?? default);

    public JsonElement? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
        reader.TryReadNil() ? null : JsonElementFormatter.Instance.Deserialize(ref reader, options);
}

/// <summary>JSON values to MessagePack and back: objects ↔ maps with string keys, arrays, strings, numbers, booleans, nil.</summary>
internal static class JsonMessagePack
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Write(ref MessagePackWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteMapHeader(element.GetPropertyCount());
                foreach (var property in element.EnumerateObject())
                {
                    var name = JsonMarshal.GetRawUtf8PropertyName(property);
                    if (name.IndexOf((byte)'\\') < 0)
                    {
                        writer.WriteString(name);
                    }
                    else
                    {
                        writer.Write(property.Name);
                    }

                    Write(ref writer, property.Value);
                }

                break;
            case JsonValueKind.Array:
                writer.WriteArrayHeader(element.GetArrayLength());
                foreach (var item in element.EnumerateArray())
                {
                    Write(ref writer, item);
                }

                break;
            case JsonValueKind.String:
            {
                var raw = JsonMarshal.GetRawUtf8Value(element)[1..^1]; // without its quotes
                if (raw.IndexOf((byte)'\\') < 0)
                {
                    writer.WriteString(raw);
                }
                else
                {
                    writer.Write(element.GetString());
                }

                break;
            }
            case JsonValueKind.Number:
                if (element.TryGetInt64(out var integer))
                {
                    writer.Write(integer);
                }
                else if (element.TryGetUInt64(out var unsigned))
                {
                    writer.Write(unsigned);
                }
                else if (element.TryGetDouble(out var number))
                {
                    writer.Write(number);
                }
                else
                {
                    throw new MessagePackSerializationException($"The JSON number {element.GetRawText()} has no MessagePack form.");
                }

                break;
            case JsonValueKind.True:
                writer.Write(true);
                break;
            case JsonValueKind.False:
                writer.Write(false);
                break;
            default: // Null, or an unset JsonElement
                writer.WriteNil();
                break;
        }
    }

    /// <summary>Reads one MessagePack value as UTF-8 JSON.</summary>
    public static ArrayBufferWriter<byte> ReadAsJson(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            Transcode(ref reader, writer, options);
        }

        return buffer;
    }

    private static void Transcode(ref MessagePackReader reader, Utf8JsonWriter writer, MessagePackSerializerOptions options)
    {
        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Nil:
                reader.ReadNil();
                writer.WriteNullValue();
                break;
            case MessagePackType.Boolean:
                writer.WriteBooleanValue(reader.ReadBoolean());
                break;
            case MessagePackType.Integer:
                if (reader.NextCode == MessagePackCode.UInt64)
                {
                    writer.WriteNumberValue(reader.ReadUInt64());
                }
                else
                {
                    writer.WriteNumberValue(reader.ReadInt64());
                }

                break;
            case MessagePackType.Float:
                var number = reader.ReadDouble();
                if (!double.IsFinite(number))
                {
                    throw new MessagePackSerializationException($"{number} has no JSON form.");
                }

                writer.WriteNumberValue(number);
                break;
            case MessagePackType.String:
                WriteString(ref reader, writer, propertyName: false);
                break;
            case MessagePackType.Array:
            {
                options.Security.DepthStep(ref reader);
                var count = reader.ReadArrayHeader();
                writer.WriteStartArray();
                for (var i = 0; i < count; i++)
                {
                    Transcode(ref reader, writer, options);
                }

                writer.WriteEndArray();
                reader.Depth--;
                break;
            }
            case MessagePackType.Map:
            {
                options.Security.DepthStep(ref reader);
                var count = reader.ReadMapHeader();
                writer.WriteStartObject();
                for (var i = 0; i < count; i++)
                {
                    if (reader.NextMessagePackType != MessagePackType.String)
                    {
                        throw new MessagePackSerializationException(
                            $"A map key must be a string (as in JSON), not {reader.NextMessagePackType}.");
                    }

                    WriteString(ref reader, writer, propertyName: true);
                    Transcode(ref reader, writer, options);
                }

                writer.WriteEndObject();
                reader.Depth--;
                break;
            }
            default:
                throw new MessagePackSerializationException(
                    $"MessagePack {reader.NextMessagePackType} values have no JSON form (the contract has none).");
        }
    }

    private static void WriteString(ref MessagePackReader reader, Utf8JsonWriter writer, bool propertyName)
    {
        var bytes = reader.ReadStringSequence() ?? throw new MessagePackSerializationException("A string was nil.");
        ReadOnlySpan<byte> utf8 = bytes.IsSingleSegment ? bytes.FirstSpan : bytes.ToArray();
        if (propertyName)
        {
            writer.WritePropertyName(utf8);
        }
        else
        {
            writer.WriteStringValue(utf8);
        }
    }
}
