using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http.Connections.Client;

namespace OpencodeGateway.Testing;

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
