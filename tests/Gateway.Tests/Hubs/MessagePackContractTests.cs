using System.Buffers;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MessagePack;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Contracts;
using OpencodeGateway.Contracts.Serialization;
using OpencodeGateway.Hubs;

namespace OpencodeGateway.Tests.Hubs;

/// <summary>
/// The contract in the hub's two protocols, as the gateway configures them: every contract type is the same map in
/// MessagePack as its JSON object (read back by MessagePack-CSharp's own primitive reader, not by our formatter), and reads back
/// to the same value; arbitrary JSON in <see cref="JsonElement"/> members survives both ways.
/// </summary>
public class MessagePackContractTests
{
    private static readonly JsonElement PartJson = Json("""
        {"id":"prt_1","type":"text","text":"héllo \"q\" \\ 😀","time":{"start":1732000000000,"end":null},"n":-5,"f":0.25,"big":18446744073709551615,"list":[1,"a",true,false,null,{}],"\u00e9":"key with escape"}
        """);

    private static readonly SessionMetadata Metadata = new()
    {
        SessionId = "ses_1", Upstream = "local", ParentId = "ses_0", OwnerId = "alice", Workspace = "w", Title = "t", Tags = ["a", "b"],
        Metadata = Json("""{"x":{"y":[1,2]}}"""), CreatedAt = DateTimeOffset.Parse("2026-01-02T03:04:05.678+00:00", CultureInfo.InvariantCulture),
        UpdatedAt = DateTimeOffset.Parse("2026-01-02T03:04:06Z", CultureInfo.InvariantCulture),
    };

    private static readonly SessionEvent Event = new()
    {
        Upstream = "local", SessionId = "ses_1", Epoch = 1_732_000_000_000_000, Seq = 42, Type = SessionEventTypes.PartDelta,
        MessageId = "msg_1", PartId = "prt_1", Field = "text", Offset = 12, Delta = "wörld 😀", Handle = 3, Part = PartJson,
        Info = Json("""{"role":"assistant"}"""), Status = Json("""{"type":"retry","attempt":2}"""), Error = Json("""{"name":"APIError","data":{"message":"m"}}"""),
        Permission = Json("""{"id":"per_1","patterns":["*"]}"""), RequestId = "per_1", Reply = "once", Todos = Json("""[{"content":"c","status":"pending"}]"""),
        Handles = new Dictionary<string, int> { ["state.metadata.output"] = 4 }, Copies = new Dictionary<string, int> { ["state.output"] = 4 },
        Question = Json("""{"id":"que_1","sessionID":"ses_2","answers":[["Red"]]}"""), ChildSessionId = "ses_2",
        Child = new ChildSession("ses_2", "ses_1", "sub task (@general subagent)", Json("""{"type":"busy"}""")),
    };

    private static readonly SessionSnapshot Snapshot = new()
    {
        Upstream = "local", SessionId = "ses_1", Epoch = 9, Seq = 3, Session = Json("""{"id":"ses_1","title":"t"}"""),
        Messages = [new MessageWithParts(Json("""{"id":"msg_1"}"""), [PartJson])], Status = Json("""{"type":"busy"}"""),
        Permissions = [Json("""{"id":"per_1"}""")], Todos = Json("[]"), Metadata = Metadata,
        Questions = [Json("""{"id":"que_1","questions":[]}""")], Children = [new ChildSession("ses_2", "ses_1", null, Json("""{"type":"idle"}"""))],
        Earlier = new EarlierMessages("eyJpZCI6Im1zZ18xIn0"),
        Gaps = new Dictionary<string, IReadOnlyDictionary<string, IReadOnlyList<int>>> { ["prt_1"] = new Dictionary<string, IReadOnlyList<int>> { ["text"] = [0, 5] } },
        Handles = new Dictionary<string, IReadOnlyDictionary<string, int>> { ["prt_1"] = new Dictionary<string, int> { ["text"] = 3 } },
        SessionHandle = 17,
    };

    /// <summary>One value of every contract type, members set (and some left out).</summary>
    private static readonly object[] Samples =
    [
        Event,
        new SessionEvent { Upstream = "u", SessionId = "ses_2", Epoch = 1, Seq = 1, Type = SessionEventTypes.SessionDeleted },
        Snapshot,
        new MessageWithParts(Json("""{"id":"msg_2"}"""), []),
        new StreamPosition(5, 6),
        new JoinRequest("ses_1", "local", new StreamPosition(1, 2)),
        new JoinRequest("ses_1"),
        new JoinResult { Upstream = "local", SessionId = "ses_1", Epoch = 1, Seq = 2, Recovered = true, Events = [Event], SessionHandle = 4 },
        new JoinResult { Upstream = "local", SessionId = "ses_1", Epoch = 1, Seq = 2, Recovered = false, Snapshot = Snapshot },
        new CreateSessionRequest("title", "local", "w", ["t"], Json("""{"k":1}""")),
        new PromptPart("text", "hi"),
        new PromptPart("file") { Mime = "image/png", Url = "data:image/png;base64,iVBORw0KGgo=", Filename = "a.png" },
        new QuestionReplyRequest("ses_1", "que_1", [["Red"], ["a", "b"]]),
        new QuestionRejectRequest("ses_1", "que_1"),
        new LoadEarlierRequest("ses_1", "cursor", 10),
        new MessagePage([new MessageWithParts(Json("""{"id":"msg_0"}"""), [PartJson])], new EarlierMessages("c2")),
        new EarlierMessages("c3"),
        new ChildSession("ses_3", "ses_1", "t", Json("""{"type":"idle"}""")),
        new UpstreamStatus { Id = "local", BaseUrl = "http://127.0.0.1:4096", Configured = false, Directory = "/w", Connected = false, Holder = "node-1", FencingToken = 7,
            HeldHere = true, Since = DateTimeOffset.Parse("2026-01-02T03:04:05Z", CultureInfo.InvariantCulture), LastError = "refused", Reconnects = 2 },
        new RegisterUpstreamRequest("sandbox-1", "http://127.0.0.1:4096", "/w", "secret"),
        new PromptRequest("ses_1", Parts: [new PromptPart("text", "hi")], Agent: "build", Model: "p/m"),
        new PromptResult("ses_1", true),
        new PermissionReplyRequest("ses_1", "per_1", "always", "ok"),
        Metadata,
        new ListSessionsRequest("w", "t", false, "q", "c", 10),
        new SessionList([Metadata], "next"),
        new SessionListChange(SessionListChangeKinds.Updated, Metadata),
        new UpdateSessionRequest("ses_1", "t", ["a"], Json("""{"a":null}""")),
        new AdoptSessionRequest("alice", "w", "local", ["x"], Json("{}")),
        new CreatedSession(Metadata, Json("""{"id":"ses_1"}""")),
        new SessionDetails { Session = Metadata, Info = Json("{}"), Status = Json("""{"type":"idle"}"""), LastAssistantMessage = Json("""{"cost":0.5}"""), LiveError = "upstream_unavailable" },
    ];

    private static readonly (IHubProtocol Json, IHubProtocol MessagePack) Protocols = GatewayProtocols();

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    /// <summary>The hub protocols exactly as the gateway registers them (<c>AddSessionHub</c>).</summary>
    private static (IHubProtocol, IHubProtocol) GatewayProtocols()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddSessionHub(new ConfigurationBuilder().Build());
        var provider = services.BuildServiceProvider();
        var protocols = provider.GetServices<IHubProtocol>().ToList();
        return (protocols.Single(p => p.Name == "json"), protocols.Single(p => p.Name == "messagepack"));
    }

    [Fact]
    public void Every_contract_type_has_a_sample()
    {
        var types = typeof(SessionEvent).Assembly.GetExportedTypes()
            .Where(t => t.IsClass && !t.IsAbstract && t.Namespace == typeof(SessionEvent).Namespace);
        Assert.Empty(types.Where(t => !Samples.Any(s => s.GetType() == t)).Select(t => t.Name));
    }

    [Fact]
    public void Every_contract_type_is_its_json_object_as_a_map_and_reads_back_the_same()
    {
        foreach (var sample in Samples)
        {
            var (json, fromMessagePack, readBack) = BothWays(sample, sample.GetType());
            Assert.True(JsonNode.DeepEquals(json, fromMessagePack), $"{sample.GetType().Name}:\n{json}\n{fromMessagePack}");
            Assert.True(JsonNode.DeepEquals(json, JsonSerializer.SerializeToNode(readBack, sample.GetType(), GatewayMessagePack.JsonOptions)),
                $"{sample.GetType().Name} read back differs");
            Assert.DoesNotContain(json!.AsObject(), p => p.Value is null); // absent instead of null, in both
        }

        // camelCase names, absent members left out, in MessagePack too
        var (_, map, _) = BothWays(new SessionEvent { Upstream = "u", SessionId = "ses_2", Epoch = 1, Seq = 1, Type = "status" }, typeof(SessionEvent));
        Assert.Equal(["upstream", "sessionId", "epoch", "seq", "type"], map!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public void Arbitrary_json_in_json_element_members_survives_both_protocols()
    {
        var random = new Random(12);
        for (var i = 0; i < 300; i++)
        {
            var value = Json(RandomJson(random, depth: 0));
            var evt = new SessionEvent { Upstream = "u", SessionId = "ses_1", Epoch = 1, Seq = i, Type = "part.updated", Part = value };
            var (json, fromMessagePack, readBack) = BothWays(evt, typeof(SessionEvent));
            Assert.True(JsonNode.DeepEquals(json, fromMessagePack), $"{json}\n{fromMessagePack}");
            // (a JSON null member reads back as an absent one, in both protocols)
            var part = ((SessionEvent)readBack!).Part;
            Assert.True(value.ValueKind == JsonValueKind.Null ? part is null : JsonElement.DeepEquals(value, part!.Value), value.GetRawText());

            // A bare JsonElement (CreateSession's result) too.
            var (bare, bareFromMessagePack, bareBack) = BothWays(value, typeof(JsonElement));
            Assert.True(JsonNode.DeepEquals(bare, bareFromMessagePack));
            Assert.True(JsonElement.DeepEquals(value, (JsonElement)bareBack!));
        }
    }

    [Fact]
    public void MessagePack_values_json_cannot_hold_are_refused_with_a_clear_error()
    {
        static byte[] Write(Action<MessagePackWriter> write)
        {
            var buffer = new ArrayBufferWriter<byte>();
            var writer = new MessagePackWriter(buffer);
            write(writer);
            return buffer.WrittenSpan.ToArray();
        }

        var intKey = Write(w =>
        {
            w.WriteMapHeader(1);
            w.Write(1);
            w.Write("x");
            w.Flush();
        });
        var binary = Write(w =>
        {
            w.Write(new byte[] { 1, 2 });
            w.Flush();
        });
        var deep = Write(w =>
        {
            for (var i = 0; i < 600; i++)
            {
                w.WriteArrayHeader(1);
            }

            w.WriteNil();
            w.Flush();
        });
        var options = GatewayMessagePack.SerializerOptions;
        Assert.Contains("map key must be a string",
            Assert.Throws<MessagePackSerializationException>(() => MessagePackSerializer.Deserialize<JsonElement>(intKey, options)).ToString());
        Assert.Contains("no JSON form",
            Assert.Throws<MessagePackSerializationException>(() => MessagePackSerializer.Deserialize<JoinRequest>(binary, options)).ToString());
        Assert.Throws<MessagePackSerializationException>(() => MessagePackSerializer.Deserialize<JsonElement>(deep, options));
    }

    /// <summary>
    /// <paramref name="value"/> sent as a hub invocation's argument in both protocols: the JSON argument, the MessagePack
    /// argument converted to JSON by MessagePack's own converter, and the value the MessagePack protocol reads back.
    /// </summary>
    private static (JsonNode? Json, JsonNode? FromMessagePack, object? ReadBack) BothWays(object value, Type type)
    {
        var message = new InvocationMessage("Probe", [value]);
        var json = JsonNode.Parse(Encoding.UTF8.GetString(Protocols.Json.GetMessageBytes(message).Span).TrimEnd('\u001e'))!["arguments"]![0];

        var bytes = Protocols.MessagePack.GetMessageBytes(message);
        var reader = new MessagePackReader(bytes);
        ReadLengthPrefix(ref reader);
        Assert.Equal(6, reader.ReadArrayHeader()); // [type, headers, invocationId, target, arguments, streamIds]
        reader.Skip();
        reader.Skip();
        reader.Skip();
        reader.Skip();
        Assert.Equal(1, reader.ReadArrayHeader());
        var argument = reader.ReadRaw();
        var fromMessagePack = IndependentlyAsJson(argument);

        var sequence = new ReadOnlySequence<byte>(bytes);
        Assert.True(Protocols.MessagePack.TryParseMessage(ref sequence, new Binder(type), out var parsed));
        return (json, fromMessagePack, ((InvocationMessage)parsed!).Arguments[0]);
    }

    private static void ReadLengthPrefix(ref MessagePackReader reader)
    {
        // SignalR's MessagePack frames start with the length as a 7-bit varint.
        while ((reader.ReadRaw(1).FirstSpan[0] & 0x80) != 0)
        {
        }
    }

    /// <summary>A MessagePack value as JSON, through MessagePack-CSharp's primitive objects (maps, arrays, numbers, strings).</summary>
    private static JsonNode? IndependentlyAsJson(ReadOnlySequence<byte> value)
    {
        var primitive = MessagePackSerializer.Deserialize<object?>(value, MessagePack.Resolvers.ContractlessStandardResolver.Options);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, primitive);
        }

        return JsonNode.Parse(buffer.WrittenSpan);

        static void Write(Utf8JsonWriter writer, object? value)
        {
            switch (value)
            {
                case null: writer.WriteNullValue(); break;
                case bool b: writer.WriteBooleanValue(b); break;
                case string s: writer.WriteStringValue(s); break;
                case ulong u: writer.WriteNumberValue(u); break;
                case float f: writer.WriteNumberValue((double)f); break;
                case double d: writer.WriteNumberValue(d); break;
                case IConvertible c when value is byte or sbyte or short or ushort or int or uint or long:
                    writer.WriteNumberValue(c.ToInt64(CultureInfo.InvariantCulture));
                    break;
                case IDictionary<object, object?> map:
                    writer.WriteStartObject();
                    foreach (var (key, item) in map)
                    {
                        writer.WritePropertyName((string)key);
                        Write(writer, item);
                    }

                    writer.WriteEndObject();
                    break;
                case object?[] array:
                    writer.WriteStartArray();
                    foreach (var item in array)
                    {
                        Write(writer, item);
                    }

                    writer.WriteEndArray();
                    break;
                default: throw new InvalidOperationException($"unexpected {value.GetType()}");
            }
        }
    }

    private sealed class Binder(Type type) : IInvocationBinder
    {
        public IReadOnlyList<Type> GetParameterTypes(string methodName) => [type];
        public Type GetReturnType(string invocationId) => type;
        public Type GetStreamItemType(string streamId) => type;
    }

    private static string RandomJson(Random random, int depth)
    {
        switch (random.Next(depth < 5 ? 9 : 6))
        {
            case 0: return "null";
            case 1: return random.Next(2) == 0 ? "true" : "false";
            case 2: return RandomInteger(random);
            case 3: return (random.NextDouble() * Math.Pow(10, random.Next(3) == 0 ? random.Next(-300, 300) : 0)).ToString("R", CultureInfo.InvariantCulture);
            case 4:
            case 5: return JsonSerializer.Serialize(RandomString(random));
            case 6:
            case 7:
            {
                var members = Enumerable.Range(0, random.Next(5)).Select(i => JsonSerializer.Serialize(RandomString(random) + i) + ":" + RandomJson(random, depth + 1));
                return "{" + string.Join(",", members) + "}";
            }
            default:
                return "[" + string.Join(",", Enumerable.Range(0, random.Next(5)).Select(_ => RandomJson(random, depth + 1))) + "]";
        }
    }

    private static string RandomInteger(Random random) => random.Next(6) switch
    {
        0 => long.MinValue.ToString(CultureInfo.InvariantCulture),
        1 => ulong.MaxValue.ToString(CultureInfo.InvariantCulture),
        2 => random.NextInt64(long.MinValue, long.MaxValue).ToString(CultureInfo.InvariantCulture),
        3 => random.Next(-40, 300).ToString(CultureInfo.InvariantCulture),
        _ => random.NextInt64(0, 1L << 53).ToString(CultureInfo.InvariantCulture),
    };

    private static string RandomString(Random random)
    {
        var pieces = new[] { "", "a", "é", "😀", "\"", "\\", "\u0001", "\n", "日本", "<>&'", "\u2028", "text " };
        return string.Concat(Enumerable.Range(0, random.Next(6)).Select(_ => pieces[random.Next(pieces.Length)]));
    }
}
