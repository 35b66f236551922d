using System.Net.WebSockets;
using System.Text.Json;

namespace OpencodeGateway.TestClient;

public sealed class HubConnectionOptions
{
    /// <summary>Appended to the URL as <c>?access_token=...</c> (what SignalR's WebSocket transport uses).</summary>
    public string? AccessToken { get; set; }

    /// <summary>
    /// When true, every server invocation is also written (args cloned) to the unbounded
    /// <see cref="HubConnection.Messages"/> channel. Off by default so load generators do not accumulate memory.
    /// </summary>
    public bool EnableMessageChannel { get; set; }

    /// <summary>
    /// When true (default) the <see cref="JsonElement"/>s passed to <see cref="HubConnection.On"/> handlers are
    /// independent copies that may be kept. When false they point into the connection's receive buffer and are
    /// only valid during the handler call (and the array itself is reused) — zero-copy mode for load generators.
    /// </summary>
    public bool CloneHandlerArguments { get; set; } = true;

    /// <summary>Interval of client pings (<c>{"type":6}</c>). Zero or <see cref="Timeout.InfiniteTimeSpan"/> disables.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long <see cref="HubConnection.DisposeAsync"/> waits for a graceful close before aborting.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Initial receive buffer size; grows for larger records (up to <see cref="MaxMessageSize"/>) and shrinks back when idle.</summary>
    public int ReceiveBufferSize { get; set; } = 4096;

    /// <summary>Largest single JSON record accepted; a larger one aborts the connection.</summary>
    public int MaxMessageSize { get; set; } = 32 * 1024 * 1024;

    /// <summary>Serializer options for arguments and <see cref="HubConnection.InvokeAsync{T}"/>; defaults to <see cref="JsonSerializerDefaults.Web"/>.</summary>
    public JsonSerializerOptions? SerializerOptions { get; set; }

    /// <summary>Optional shared handler for <see cref="ClientWebSocket.ConnectAsync(Uri, HttpMessageInvoker?, CancellationToken)"/>
    /// (e.g. a SocketsHttpHandler with a ConnectCallback that shrinks SO_RCVBUF).</summary>
    public HttpMessageInvoker? HttpMessageInvoker { get; set; }

    /// <summary>Hook to set headers, subprotocols, etc. on the ClientWebSocket before connecting.</summary>
    public Action<ClientWebSocketOptions>? ConfigureWebSocket { get; set; }
}
