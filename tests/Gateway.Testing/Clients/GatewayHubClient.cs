using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>How a test's hub client connects: credentials, transport, what it records.</summary>
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
    /// clients that handle events themselves, so long answers do not pile up.
    /// </summary>
    public bool RecordEvents { get; init; } = true;

    /// <summary>
    /// Run the WebSocket through <see cref="ObservedWebSocket"/>: counts bytes received and can stop reading the
    /// socket. Off: the official client's own WebSocket, untouched.
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
    /// Reconnect by itself after the connection drops (retrying at once, then every 250 ms, for ever), as an app's client
    /// does; behind a load balancer it reaches another node.
    /// </summary>
    public bool AutomaticReconnect { get; init; }

    /// <summary>Anything else of the official client's connection options.</summary>
    public Action<HttpConnectionOptions>? ConfigureConnection { get; init; }

    /// <summary>
    /// The event form asked for with <c>?events=</c>, as given (<see cref="EventForms.Compact"/>, <see cref="EventForms.Full"/>,
    /// or anything a test wants refused); null asks for nothing (the gateway's default: compact).
    /// </summary>
    public string? Events { get; init; }

    /// <summary>The MessagePack hub protocol (with the contract's formatters) instead of JSON.</summary>
    public bool MessagePack { get; init; }

    /// <summary>
    /// The package's options for these (<see cref="GatewayHubConnection.Create"/> builds the connection from them);
    /// <paramref name="socketOpened"/> hears of each <see cref="ObservedWebSocket"/> opened.
    /// </summary>
    public GatewayClientOptions ToClientOptions(Uri hubUrl, Action<ObservedWebSocket>? socketOpened = null)
    {
        var url = hubUrl;
        if (TokenInQuery && AccessToken is { } queryToken)
        {
            url = WithQuery(url, "access_token", queryToken);
        }

        if (Events is { } events)
        {
            url = WithQuery(url, EventForms.QueryParameter, events);
        }

        return new GatewayClientOptions
        {
            Url = url,
            AccessTokenProvider = !TokenInQuery && AccessToken is { } token ? () => Task.FromResult<string?>(token) : null,
            ApiKey = ApiKey,
            SkipNegotiation = SkipNegotiation,
            Protocol = MessagePack ? GatewayHubProtocol.MessagePack : GatewayHubProtocol.Json,
            AutomaticReconnect = AutomaticReconnect,
            ReconnectDelays = [TimeSpan.Zero, TimeSpan.FromMilliseconds(250)],
            ServerTimeout = ServerTimeout,
            KeepAliveInterval = KeepAliveInterval,
            HandshakeTimeout = HandshakeTimeout,
            ConfigureConnection = o =>
            {
                if (ObserveWebSocket)
                {
                    o.WebSocketFactory = async (context, ct) =>
                    {
                        var socket = await ObservedWebSocket.ConnectAsync(context, SocketReceiveBufferSize, ct);
                        socketOpened?.Invoke(socket);
                        return socket;
                    };
                }

                ConfigureConnection?.Invoke(o);
            },
        };
    }

    /// <summary>A started <see cref="GatewayClient"/> (the package) of these options.</summary>
    public async Task<GatewayClient> StartClientAsync(Uri hubUrl)
    {
        var client = new GatewayClient(ToClientOptions(hubUrl));
        try
        {
            await client.StartAsync();
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    private static Uri WithQuery(Uri url, string name, string value)
    {
        var builder = new UriBuilder(url);
        builder.Query = (builder.Query.Length > 1 ? builder.Query[1..] + "&" : "") + name + "=" + Uri.EscapeDataString(value);
        return builder.Uri;
    }
}

/// <summary>
/// A raw hub connection for tests and the load generator (the package's <see cref="GatewayHubConnection"/>, without
/// session views): any method with any arguments (hostile calls included), results and events as the JSON a client
/// receives (a MessagePack client's maps read as the same JSON), and what tests need to watch a connection (recorded
/// events, <see cref="Closed"/>, bytes received, a reader that stops). Watching a session the way an app does is
/// <see cref="ObservedSession"/>'s.
/// </summary>
public sealed class GatewayHubClient : IAsyncDisposable
{
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

    /// <summary>Builds the connection for <paramref name="hubUrl"/> (e.g. <c>http://127.0.0.1:PORT/hubs/session</c>) and starts it.</summary>
    public static async Task<GatewayHubClient> ConnectAsync(Uri hubUrl, GatewayHubClientOptions? options = null, CancellationToken ct = default)
    {
        options ??= new GatewayHubClientOptions();
        GatewayHubClient? client = null;
        var connection = GatewayHubConnection.Create(options.ToClientOptions(hubUrl, socket => client!._socket = socket));
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
}

/// <summary>The gateway's error of a failed hub call.</summary>
public static class HubExceptionExtensions
{
    /// <summary>
    /// The gateway's code (<c>session_not_found</c>, …) from the text the server sent: "<c>An unexpected error occurred
    /// invoking 'Join' on the server. HubException: {code}: {message}</c>" (read as the package reads it).
    /// </summary>
    public static string GatewayCode(this Microsoft.AspNetCore.SignalR.HubException e) => GatewayException.From(e).Code;
}
