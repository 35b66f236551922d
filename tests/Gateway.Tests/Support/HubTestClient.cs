using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.TestHost;

namespace Gateway.Tests.Support;

/// <summary>A hub error: the server's "<c>{code}: {message}</c>".</summary>
public sealed class HubError(string message) : Exception(message)
{
    /// <summary>The gateway's error code, e.g. <c>session_not_found</c>.</summary>
    public string Code => Message.Split(':', 2)[0].Trim();
}

/// <summary>
/// A minimal SignalR client speaking the JSON hub protocol over a <see cref="TestServer"/> WebSocket, with the token
/// in <c>?access_token=</c> as browsers do. Server-to-client calls land in <see cref="Events"/>.
/// </summary>
public sealed class HubTestClient : IAsyncDisposable
{
    private const char RecordSeparator = '\u001e';
    private readonly WebSocket _socket;
    private readonly Dictionary<string, TaskCompletionSource<JsonElement>> _pending = [];
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _receiveLoop;
    private readonly TaskCompletionSource<string?> _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextInvocation;

    private HubTestClient(WebSocket socket)
    {
        _socket = socket;
        _receiveLoop = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>Invocations from the server (<c>{type:1, target, arguments}</c>): SessionEvent, SessionSnapshot.</summary>
    public Channel<(string Target, JsonElement Argument)> Events { get; } = Channel.CreateUnbounded<(string, JsonElement)>();

    public static async Task<HubTestClient> ConnectAsync(TestServer server, string? token, string path = "/hubs/session")
    {
        var uri = new UriBuilder(server.BaseAddress) { Scheme = "ws", Path = path };
        if (token is not null)
        {
            uri.Query = "access_token=" + Uri.EscapeDataString(token);
        }

        var socket = await server.CreateWebSocketClient().ConnectAsync(uri.Uri, CancellationToken.None);
        var client = new HubTestClient(socket);
        await client.SendAsync("""{"protocol":"json","version":1}""");
        var error = await client._handshake.Task.WaitAsync(TimeSpan.FromSeconds(10));
        if (error is not null)
        {
            throw new InvalidOperationException("Handshake refused: " + error);
        }

        return client;
    }

    /// <summary>Calls a hub method; returns its result or throws <see cref="HubError"/>.</summary>
    public async Task<JsonElement> InvokeAsync(string target, params object?[] arguments)
    {
        var id = Interlocked.Increment(ref _nextInvocation).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var completion = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending)
        {
            _pending[id] = completion;
        }

        await SendAsync(JsonSerializer.Serialize(new { type = 1, invocationId = id, target, arguments }, JsonSerializerOptions.Web));
        return await completion.Task.WaitAsync(TimeSpan.FromSeconds(15));
    }

    /// <summary>The next server invocation of <paramref name="target"/>, or null when none arrives within the wait.</summary>
    public async Task<JsonElement?> NextAsync(string target, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            while (true)
            {
                var (name, argument) = await Events.Reader.ReadAsync(timeout.Token);
                if (name == target)
                {
                    return argument;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    private async Task SendAsync(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json + RecordSeparator);
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var text = new StringBuilder();
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var result = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                text.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
                var all = text.ToString();
                var end = all.LastIndexOf(RecordSeparator);
                if (end < 0)
                {
                    continue;
                }

                text.Clear().Append(all[(end + 1)..]);
                foreach (var message in all[..end].Split(RecordSeparator))
                {
                    Handle(message);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            // closed
        }
        finally
        {
            _handshake.TrySetResult("connection closed");
            Events.Writer.TryComplete();
            lock (_pending)
            {
                foreach (var pending in _pending.Values)
                {
                    pending.TrySetException(new HubError("closed: the connection closed"));
                }
            }
        }
    }

    private void Handle(string message)
    {
        using var document = JsonDocument.Parse(message);
        var root = document.RootElement;
        if (!root.TryGetProperty("type", out var type))
        {
            _handshake.TrySetResult(root.TryGetProperty("error", out var error) ? error.GetString() : null);
            return;
        }

        switch (type.GetInt32())
        {
            case 1:
                Events.Writer.TryWrite((root.GetProperty("target").GetString()!, root.GetProperty("arguments")[0].Clone()));
                break;
            case 3:
                TaskCompletionSource<JsonElement>? completion;
                lock (_pending)
                {
                    _pending.Remove(root.GetProperty("invocationId").GetString()!, out completion);
                }

                if (root.TryGetProperty("error", out var failure))
                {
                    var text = failure.GetString()!;
                    const string marker = "HubException: ";
                    var at = text.IndexOf(marker, StringComparison.Ordinal);
                    completion?.TrySetException(new HubError(at >= 0 ? text[(at + marker.Length)..] : text));
                }
                else
                {
                    completion?.TrySetResult(root.TryGetProperty("result", out var result) ? result.Clone() : default);
                }

                break;
            case 7:
                Events.Writer.TryComplete();
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
            }
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or InvalidOperationException)
        {
            // already gone
        }

        _stop.Cancel();
        await _receiveLoop.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _stop.Dispose();
        _sendLock.Dispose();
    }
}
