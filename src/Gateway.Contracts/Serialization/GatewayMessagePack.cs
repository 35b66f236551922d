using System.Text.Json;
using System.Text.Json.Serialization;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;

namespace OpencodeGateway.Contracts.Serialization;

/// <summary>
/// The MessagePack form of the contract: every contract type is written as the map its JSON form is (the same
/// camelCase member names, absent members instead of nulls), and every <see cref="JsonElement"/> (opencode's part,
/// message and session objects) as the maps, arrays and values it holds. The gateway's MessagePack hub protocol uses
/// these options; a .NET client passes them to <c>AddMessagePackProtocol(o =&gt; o.SerializerOptions = …)</c>.
/// </summary>
public static class GatewayMessagePack
{
    /// <summary>
    /// The JSON form the contract types are written in (what the hub's JSON protocol writes: camelCase, nulls left out;
    /// names read case-insensitively).
    /// </summary>
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>
    /// The contract's formatters first, then what SignalR's MessagePack protocol uses by default (enums as strings,
    /// contractless objects), with MessagePack's limits for untrusted data.
    /// </summary>
    public static MessagePackSerializerOptions SerializerOptions { get; } = MessagePackSerializerOptions.Standard
        .WithResolver(CompositeResolver.Create(GatewayContractResolver.Instance, DynamicEnumAsStringResolver.Instance,
            ContractlessStandardResolver.Instance))
        .WithSecurity(MessagePackSecurity.UntrustedData);
}

/// <summary>
/// Formatters for the contract's types (<c>OpencodeGateway.Contracts</c>) and <see cref="JsonElement"/>; null for
/// anything else, so a composite resolver goes on to the next one.
/// </summary>
public sealed class GatewayContractResolver : IFormatterResolver
{
    public static readonly GatewayContractResolver Instance = new();

    private GatewayContractResolver()
    {
    }

    public IMessagePackFormatter<T>? GetFormatter<T>() => Cache<T>.Formatter;

    private static class Cache<T>
    {
        public static readonly IMessagePackFormatter<T>? Formatter = (IMessagePackFormatter<T>?)Create(typeof(T));
    }

    private static object? Create(Type type)
    {
        if (type == typeof(JsonElement))
        {
            return JsonElementFormatter.Instance;
        }

        if (type == typeof(JsonElement?))
        {
            return NullableJsonElementFormatter.Instance;
        }

        return type.Assembly == typeof(SessionEvent).Assembly && type.IsClass && !type.IsAbstract
            ? Activator.CreateInstance(typeof(JsonFormFormatter<>).MakeGenericType(type))
            : null;
    }
}
