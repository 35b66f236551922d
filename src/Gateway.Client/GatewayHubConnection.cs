using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;
using OpencodeGateway.Contracts.Serialization;

namespace OpencodeGateway.Client;

/// <summary>
/// The official SignalR client's <see cref="HubConnection"/> set up for the gateway's session hub: the event form in
/// the URL, credentials, the protocol with the contract's serializer settings, timeouts and the reconnect policy.
/// <see cref="GatewayClient"/> uses it; use it yourself for a raw connection (your own handlers, no session views).
/// </summary>
public static class GatewayHubConnection
{
    /// <summary>The gateway's JSON payload settings: camelCase, absent members instead of nulls.</summary>
    public static JsonSerializerOptions JsonPayloadOptions { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>Builds (does not start) a connection as <paramref name="options"/> say.</summary>
    public static HubConnection Create(GatewayClientOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var url = options.Events == GatewayEventForm.Full ? WithQuery(options.Url!, EventForms.QueryParameter, EventForms.Full) : options.Url!;
        var builder = new HubConnectionBuilder().WithUrl(url, o =>
        {
            if (options.AccessTokenProvider is { } tokens)
            {
                o.AccessTokenProvider = tokens;
            }

            if (options.ApiKey is { } key)
            {
                o.Headers["X-Api-Key"] = key;
            }

            if (options.SkipNegotiation)
            {
                o.SkipNegotiation = true;
                o.Transports = HttpTransportType.WebSockets;
            }

            options.ConfigureConnection?.Invoke(o);
        });
        if (options.Protocol == GatewayHubProtocol.MessagePack)
        {
            builder.AddMessagePackProtocol(o => o.SerializerOptions = GatewayMessagePack.SerializerOptions);
        }
        else
        {
            builder.AddJsonProtocol(o => o.PayloadSerializerOptions = JsonPayloadOptions);
        }

        if (options.AutomaticReconnect)
        {
            builder.WithAutomaticReconnect(new ReconnectPolicy(options.ReconnectDelays));
        }

        if (loggerFactory is not null)
        {
            builder.Services.AddSingleton(loggerFactory);
        }

        var connection = builder.Build();
        if (options.ServerTimeout is { } serverTimeout)
        {
            connection.ServerTimeout = serverTimeout;
        }

        if (options.KeepAliveInterval is { } keepAlive)
        {
            connection.KeepAliveInterval = keepAlive;
        }

        if (options.HandshakeTimeout is { } handshake)
        {
            connection.HandshakeTimeout = handshake;
        }

        return connection;
    }

    private static Uri WithQuery(Uri url, string name, string value)
    {
        var builder = new UriBuilder(url);
        builder.Query = (builder.Query.Length > 1 ? builder.Query[1..] + "&" : "") + name + "=" + Uri.EscapeDataString(value);
        return builder.Uri;
    }
}
