using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Contracts;
using OpencodeGateway.Contracts.Serialization;

namespace OpencodeGateway.Testing;

/// <summary>How a <see cref="GatewayHubClient"/> connects: credentials, transport, what it records.</summary>
public sealed record GatewayHubClientOptions
{
    /// <summary>A bearer token, sent as the official client sends it: <c>Authorization</c> on negotiate and WebSocket.</summary>
    public string? AccessToken { get; init; }

    /// <summary>Send <see cref="AccessToken"/> as <c>?access_token=</c> in the URL instead, as browsers do.</summary>
    public bool TokenInQuery { get; init; }

    /// <summary>An API key, sent as <c>X-Api-Key</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>WebSockets without negotiate (what clients behind a load balancer without sticky sessions must do).</summary>
    public bool SkipNegotiation { get; init; }

    /// <summary>
    /// Keep every <c>SessionEvent</c> and <c>SessionSnapshot</c> for <see cref="GatewayHubClient.NextAsync"/>. Off for
    /// clients that handle events themselves (a <see cref="SessionWatcher"/>), so long answers do not pile up.
    /// </summary>
    public bool RecordEvents { get; init; } = true;

    /// <summary>
    /// Run the WebSocket through <see cref="ObservedWebSocket"/>: counts bytes received and can stop reading the
    /// socket (<see cref="GatewayHubClient.PauseReading"/>). Off: the official client's own WebSocket, untouched.
    /// </summary>
    public bool ObserveWebSocket { get; init; }

    /// <summary>With <see cref="ObserveWebSocket"/>: the socket's receive buffer (SO_RCVBUF), small to fill it fast.</summary>
    public int? SocketReceiveBufferSize { get; init; }

    /// <summary>The client's server timeout (official default 30 s): how long it waits for any message before closing.</summary>
    public TimeSpan? ServerTimeout { get; init; }

    /// <summary>How often the client pings a server it sent nothing else to (official default 15 s).</summary>
    public TimeSpan? KeepAliveInterval { get; init; }

    /// <summary>How long the client waits for the handshake's answer (official default 15 s).</summary>
    public TimeSpan? HandshakeTimeout { get; init; }

    /// <summary>
    /// Reconnect by itself after the connection drops (the official client's automatic reconnect, retrying every few
    /// hundred ms, for ever), as an app's client does; behind a load balancer it reaches another node.
    /// </summary>
    public bool AutomaticReconnect { get; init; }

    /// <summary>Anything else of the official client's connection options.</summary>
    public Action<HttpConnectionOptions>? ConfigureConnection { get; init; }

    /// <summary>
    /// The event form asked for with <c>?events=</c> (<see cref="EventForms.Compact"/> or <see cref="EventForms.Full"/>);
    /// null asks for nothing (the gateway's default: compact).
    /// </summary>
    public string? Events { get; init; }

    /// <summary>The MessagePack hub protocol (with the contract's formatters) instead of JSON.</summary>
    public bool MessagePack { get; init; }
}

/// <summary>
/// A thin layer over the official SignalR client (<see cref="HubConnection"/>, JSON protocol with the gateway's payload
/// options: camelCase, absent members for nulls; or MessagePack with the contract's formatters) for the gateway's hub:
/// its methods with the contract's request types, results and events as the JSON a client receives (a MessagePack
/// client's maps read as the same JSON), and what tests need to watch a connection (recorded events,
/// <see cref="Closed"/>, bytes received, a reader that stops).
/// </summary>
public sealed class GatewayHubClient : IAsyncDisposable
{
    /// <summary>The gateway's payload options (see <c>AddJsonProtocol</c> in the gateway).</summary>
    public static readonly JsonSerializerOptions PayloadOptions = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly ConcurrentDictionary<string, Channel<JsonElement>> _inboxes = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource<Exception?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ObservedWebSocket? _socket;

    private GatewayHubClient(HubConnection connection)
    {
        Connection = connection;
        connection.Closed += e =>
        {
            _closed.TrySetResult(e);
            foreach (var inbox in _inboxes.Values)
            {
                inbox.Writer.TryComplete();
            }

            return Task.CompletedTask;
        };
    }

    /// <summary>The official client's connection, for anything this layer does not cover.</summary>
    public HubConnection Connection { get; }

    /// <summary>Completes when the connection has closed, with the error the client reports (null for a clean close).</summary>
    public Task<Exception?> Closed => _closed.Task;

    public bool IsClosed => _closed.Task.IsCompleted;

    /// <summary>WebSocket payload bytes received (handshake included). Needs <see cref="GatewayHubClientOptions.ObserveWebSocket"/>.</summary>
    public long BytesReceived => Socket.BytesReceived;

    /// <summary>
    /// While true the WebSocket is not read, so the socket's buffers and then the gateway's outbox fill up (a stalled
    /// client). Needs <see cref="GatewayHubClientOptions.ObserveWebSocket"/>.
    /// </summary>
    public bool PauseReading
    {
        get => Socket.PauseReading;
        set => Socket.PauseReading = value;
    }

    private ObservedWebSocket Socket => _socket ?? throw new InvalidOperationException(
        "Connect with GatewayHubClientOptions.ObserveWebSocket = true to count bytes or pause reading.");

    /// <summary>Builds the official client for <paramref name="hubUrl"/> (e.g. <c>http://127.0.0.1:PORT/hubs/session</c>) and starts it.</summary>
    public static async Task<GatewayHubClient> ConnectAsync(Uri hubUrl, GatewayHubClientOptions? options = null, CancellationToken ct = default)
    {
        options ??= new GatewayHubClientOptions();
        GatewayHubClient? client = null;
        var url = hubUrl;
        if (options is { TokenInQuery: true, AccessToken: { } queryToken })
        {
            url = WithQuery(url, "access_token", queryToken);
        }

        if (options.Events is { } events)
        {
            url = WithQuery(url, EventForms.QueryParameter, events);
        }

        var connectionBuilder = new HubConnectionBuilder()
            .WithUrl(url, o =>
            {
                if (options is { TokenInQuery: false, AccessToken: { } token })
                {
                    o.AccessTokenProvider = () => Task.FromResult<string?>(token);
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

                if (options.ObserveWebSocket)
                {
                    o.WebSocketFactory = async (context, token) =>
                    {
                        var socket = await ObservedWebSocket.ConnectAsync(context, options.SocketReceiveBufferSize, token);
                        client!._socket = socket;
                        return socket;
                    };
                }

                options.ConfigureConnection?.Invoke(o);
            });
        if (options.MessagePack)
        {
            connectionBuilder.AddMessagePackProtocol(o => o.SerializerOptions = GatewayMessagePack.SerializerOptions);
        }
        else
        {
            connectionBuilder.AddJsonProtocol(o => o.PayloadSerializerOptions = PayloadOptions);
        }

        if (options.AutomaticReconnect)
        {
            connectionBuilder.WithAutomaticReconnect(new ForeverRetryPolicy());
        }

        var connection = connectionBuilder.Build();
        if (options.KeepAliveInterval is { } keepAlive)
        {
            connection.KeepAliveInterval = keepAlive;
        }

        if (options.ServerTimeout is { } serverTimeout)
        {
            connection.ServerTimeout = serverTimeout;
        }

        if (options.HandshakeTimeout is { } handshakeTimeout)
        {
            connection.HandshakeTimeout = handshakeTimeout;
        }

        client = new GatewayHubClient(connection);
        if (options.RecordEvents)
        {
            client.Record(nameof(ISessionClient.SessionEvent));
            client.Record(nameof(ISessionClient.SessionSnapshot));
        }

        try
        {
            await connection.StartAsync(ct);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }

        return client;
    }

    /// <summary>Keeps every server call of <paramref name="target"/> for <see cref="NextAsync"/> (call before it is sent).</summary>
    public void Record(string target)
    {
        var inbox = _inboxes.GetOrAdd(target, _ => Channel.CreateUnbounded<JsonElement>());
        Connection.On<JsonElement>(target, argument => inbox.Writer.TryWrite(argument));
    }

    /// <summary>The next recorded call of <paramref name="target"/>, or null when none arrives within <paramref name="wait"/>.</summary>
    public async Task<JsonElement?> NextAsync(string target, TimeSpan wait)
    {
        if (!_inboxes.TryGetValue(target, out var inbox))
        {
            throw new InvalidOperationException($"'{target}' is not recorded: call Record(\"{target}\") first.");
        }

        using var timeout = new CancellationTokenSource(wait);
        try
        {
            return await inbox.Reader.ReadAsync(timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return null;
        }
    }

    /// <summary>Handles every <c>SessionEvent</c> (in the order the gateway sent them, one at a time).</summary>
    public IDisposable OnSessionEvent(Action<JsonElement> handler) => Connection.On(nameof(ISessionClient.SessionEvent), handler);

    /// <summary>Handles every compact delta (<see cref="ISessionClient.D"/>), in order with the events.</summary>
    public IDisposable OnCompactDelta(Action<CompactDelta> handler) =>
        Connection.On<int, long, int, int, string>(nameof(ISessionClient.D), (s, seq, h, offset, delta) => handler(new CompactDelta(s, seq, h, offset, delta)));

    /// <summary>Handles every pushed <c>SessionSnapshot</c>.</summary>
    public IDisposable OnSessionSnapshot(Action<JsonElement> handler) => Connection.On(nameof(ISessionClient.SessionSnapshot), handler);

    /// <summary>Calls any hub method with any arguments (hostile calls included); the result as JSON.</summary>
    public async Task<JsonElement> InvokeAsync(string method, params object?[] args) =>
        await Connection.InvokeCoreAsync(method, typeof(JsonElement), args) is JsonElement result ? result : default;

    public Task<JsonElement> JoinAsync(JoinRequest request) => InvokeAsync("Join", request);

    public Task LeaveAsync(string sessionId) => Connection.InvokeAsync("Leave", sessionId);

    public Task<JsonElement> CreateSessionAsync(CreateSessionRequest? request = null) =>
        InvokeAsync("CreateSession", request ?? new CreateSessionRequest());

    public Task<JsonElement> ListSessionsAsync(ListSessionsRequest? request = null) =>
        InvokeAsync("ListSessions", request ?? new ListSessionsRequest());

    public Task<JsonElement> UpdateMetadataAsync(UpdateSessionRequest request) => InvokeAsync("UpdateMetadata", request);

    public Task<JsonElement> PromptAsync(PromptRequest request) => InvokeAsync("Prompt", request);

    public Task AbortAsync(string sessionId) => Connection.InvokeAsync("Abort", sessionId);

    public Task ReplyPermissionAsync(PermissionReplyRequest request) => Connection.InvokeAsync("ReplyPermission", request);

    public Task ReplyQuestionAsync(QuestionReplyRequest request) => Connection.InvokeAsync("ReplyQuestion", request);

    public Task RejectQuestionAsync(QuestionRejectRequest request) => Connection.InvokeAsync("RejectQuestion", request);

    public Task<JsonElement> LoadEarlierAsync(LoadEarlierRequest request) => InvokeAsync("LoadEarlier", request);

    public async ValueTask DisposeAsync() => await Connection.DisposeAsync();

    private static Uri WithQuery(Uri url, string name, string value)
    {
        var builder = new UriBuilder(url);
        builder.Query = (builder.Query.Length > 1 ? builder.Query[1..] + "&" : "") + name + "=" + Uri.EscapeDataString(value);
        return builder.Uri;
    }
}

/// <summary>The arguments of one compact delta (<see cref="ISessionClient.D"/>).</summary>
public sealed record CompactDelta(int S, long Seq, int H, int Offset, string Delta);

/// <summary>The gateway's error of a failed hub call.</summary>
public static class HubExceptionExtensions
{
    private const string Marker = "HubException: ";

    /// <summary>
    /// The gateway's code (<c>session_not_found</c>, …) from the text the server sent: "<c>An unexpected error occurred
    /// invoking 'Join' on the server. HubException: {code}: {message}</c>".
    /// </summary>
    public static string GatewayCode(this HubException e)
    {
        var at = e.Message.IndexOf(Marker, StringComparison.Ordinal);
        var text = at >= 0 ? e.Message[(at + Marker.Length)..] : e.Message;
        return text.Split(':', 2)[0].Trim();
    }
}

/// <summary>
/// The official client's WebSocket (a <see cref="ClientWebSocket"/> with the headers and token its own factory sets),
/// wrapped to count the bytes received and to stop reading on demand. Only the socket is wrapped: framing, handshake
/// and the hub protocol stay the official client's.
/// </summary>
public sealed class ObservedWebSocket : WebSocket
{
    private readonly ClientWebSocket _inner;
    private readonly HttpMessageInvoker? _invoker;
    private TaskCompletionSource? _resume;
    private long _bytesReceived;

    private ObservedWebSocket(ClientWebSocket inner, HttpMessageInvoker? invoker)
    {
        _inner = inner;
        _invoker = invoker;
    }

    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    public bool PauseReading
    {
        get => Volatile.Read(ref _resume) is not null;
        set
        {
            if (value)
            {
                Interlocked.CompareExchange(ref _resume, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);
            }
            else
            {
                Interlocked.Exchange(ref _resume, null)?.TrySetResult();
            }
        }
    }

    public static async Task<ObservedWebSocket> ConnectAsync(WebSocketConnectionContext context, int? receiveBufferSize, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        foreach (var (name, value) in context.Options.Headers)
        {
            socket.Options.SetRequestHeader(name, value);
        }

        if (context.Options.AccessTokenProvider is { } provider && await provider() is { Length: > 0 } token)
        {
            socket.Options.SetRequestHeader("Authorization", new AuthenticationHeaderValue("Bearer", token).ToString());
        }

        context.Options.WebSocketConfiguration?.Invoke(socket.Options);
        HttpMessageInvoker? invoker = null;
        if (receiveBufferSize is { } size)
        {
            invoker = new HttpMessageInvoker(new SocketsHttpHandler
            {
                ConnectCallback = async (connect, token) =>
                {
                    var tcp = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = size, NoDelay = true };
                    try
                    {
                        await tcp.ConnectAsync(connect.DnsEndPoint, token);
                    }
                    catch
                    {
                        tcp.Dispose();
                        throw;
                    }

                    return new NetworkStream(tcp, ownsSocket: true);
                },
            });
        }

        try
        {
            await socket.ConnectAsync(context.Uri, invoker, ct);
        }
        catch
        {
            socket.Dispose();
            invoker?.Dispose();
            throw;
        }

        return new ObservedWebSocket(socket, invoker);
    }

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _resume) is { } paused)
        {
            await paused.Task.WaitAsync(cancellationToken);
        }

        var result = await _inner.ReceiveAsync(buffer, cancellationToken);
        Interlocked.Add(ref _bytesReceived, result.Count);
        return result;
    }

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await ReceiveAsync(buffer.AsMemory(), cancellationToken);
        return result.MessageType == WebSocketMessageType.Close
            ? new WebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage, _inner.CloseStatus, _inner.CloseStatusDescription)
            : new WebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage);
    }

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        _inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, WebSocketMessageFlags messageFlags, CancellationToken cancellationToken) =>
        _inner.SendAsync(buffer, messageType, messageFlags, cancellationToken);

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        _inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);

    public override WebSocketCloseStatus? CloseStatus => _inner.CloseStatus;
    public override string? CloseStatusDescription => _inner.CloseStatusDescription;
    public override WebSocketState State => _inner.State;
    public override string? SubProtocol => _inner.SubProtocol;

    public override void Abort()
    {
        PauseReading = false;
        _inner.Abort();
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        _inner.CloseAsync(closeStatus, statusDescription, cancellationToken);

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        _inner.CloseOutputAsync(closeStatus, statusDescription, cancellationToken);

    public override void Dispose()
    {
        PauseReading = false;
        _inner.Dispose();
        _invoker?.Dispose();
    }
}

/// <summary>Retries at once, then every 250 ms, for ever.</summary>
internal sealed class ForeverRetryPolicy : IRetryPolicy
{
    public TimeSpan? NextRetryDelay(RetryContext retryContext) =>
        retryContext.PreviousRetryCount == 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(250);
}
