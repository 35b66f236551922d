using System.Buffers;
using System.Buffers.Text;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;

namespace OpencodeGateway.TestClient;

/// <summary>
/// Minimal SignalR client speaking the JSON hub protocol (version 1) over a raw WebSocket.
/// Skips negotiation (connects straight to the WebSocket endpoint). Supports invocations, non-blocking sends,
/// server-to-client invocations, pings, completions and close messages. No streaming, no client results,
/// no reconnect, no stateful reconnect (acks/sequence messages are ignored).
/// </summary>
public sealed class HubConnection : IAsyncDisposable
{
    private const byte RecordSeparator = 0x1E;
    private static readonly byte[] HandshakeRequest = "{\"protocol\":\"json\",\"version\":1}\u001e"u8.ToArray();
    private static readonly byte[] PingMessage = "{\"type\":6}\u001e"u8.ToArray();
    private static readonly JsonSerializerOptions DefaultSerializerOptions = new(JsonSerializerDefaults.Web);

    private readonly WebSocket _ws;
    private readonly JsonSerializerOptions _serializerOptions;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Lock _pendingLock = new();
    private readonly TaskCompletionSource<string?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Channel<(string Target, JsonElement[] Args)>? _channel;
    private readonly bool _cloneHandlerArgs;
    private readonly int _initialBufferSize;
    private readonly int _maxMessageSize;
    private readonly TimeSpan _closeTimeout;

    // Receive state (only touched by the receive loop).
    private byte[] _buffer;
    private int _start;   // first unconsumed byte
    private int _end;     // end of received data
    private int _scanned; // [_start, _scanned) is known not to contain a record separator
    private bool _handshakeDone;
    private JsonElement[]?[]? _ephemeralArgArrays;

    private long _bytesReceived;
    private long _invocationsReceived;
    private long _nextInvocationId;
    private Dictionary<long, TaskCompletionSource<JsonElement>>? _pending; // guarded by _pendingLock
    private volatile bool _isClosed;
    private volatile bool _localClose;
    private string? _closeError;
    private volatile Dictionary<string, Action<JsonElement[]>[]>? _handlers; // copy-on-write
    private TaskCompletionSource? _resumeGate; // non-null while PauseReading
    private Timer? _pingTimer;
    private int _disposed;

    // Send state (guarded by _sendLock).
    private ArrayBufferWriter<byte>? _sendBuffer;
    private Utf8JsonWriter? _jsonWriter;

    private HubConnection(WebSocket ws, HubConnectionOptions options)
    {
        _ws = ws;
        _serializerOptions = options.SerializerOptions ?? DefaultSerializerOptions;
        _cloneHandlerArgs = options.CloneHandlerArguments;
        _initialBufferSize = Math.Max(256, options.ReceiveBufferSize);
        _maxMessageSize = Math.Max(_initialBufferSize, options.MaxMessageSize);
        _closeTimeout = options.CloseTimeout;
        _buffer = new byte[_initialBufferSize];
        if (options.EnableMessageChannel)
        {
            _channel = Channel.CreateUnbounded<(string, JsonElement[])>(
                new UnboundedChannelOptions { SingleWriter = true, SingleReader = false });
        }
    }

    // ------------------------------------------------------------------ connect

    /// <summary>Connects to e.g. <c>http://127.0.0.1:5000/hubs/session</c> (ws/wss URLs accepted too) and performs the handshake.</summary>
    public static Task<HubConnection> ConnectAsync(Uri hubUrl, string? accessToken = null, CancellationToken ct = default)
        => ConnectAsync(hubUrl, new HubConnectionOptions { AccessToken = accessToken }, ct);

    public static async Task<HubConnection> ConnectAsync(Uri hubUrl, HubConnectionOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(hubUrl);
        ArgumentNullException.ThrowIfNull(options);
        var uri = BuildWebSocketUri(hubUrl, options.AccessToken);
        var ws = new ClientWebSocket();
        ws.Options.KeepAliveInterval = TimeSpan.Zero; // SignalR-level pings are what the server's client timeout looks at
        options.ConfigureWebSocket?.Invoke(ws.Options);
        try
        {
            await ws.ConnectAsync(uri, options.HttpMessageInvoker, ct).ConfigureAwait(false);
        }
        catch
        {
            ws.Dispose();
            throw;
        }
        return await StartAsync(ws, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs the hub protocol over an already connected WebSocket (e.g. from
    /// <c>TestServer.CreateWebSocketClient().ConnectAsync(...)</c>). The connection owns the socket afterwards.
    /// </summary>
    public static Task<HubConnection> ConnectAsync(WebSocket webSocket, HubConnectionOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(webSocket);
        return StartAsync(webSocket, options ?? new HubConnectionOptions(), ct);
    }

    private static async Task<HubConnection> StartAsync(WebSocket ws, HubConnectionOptions options, CancellationToken ct)
    {
        var connection = new HubConnection(ws, options);
        try
        {
            await ws.SendAsync(HandshakeRequest, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
            _ = connection.ReceiveLoopAsync();
            await connection._handshake.Task.WaitAsync(options.HandshakeTimeout, ct).ConfigureAwait(false);
        }
        catch
        {
            connection._localClose = true;
            ws.Abort();
            ws.Dispose();
            throw;
        }
        var interval = options.KeepAliveInterval;
        if (interval > TimeSpan.Zero && interval != Timeout.InfiniteTimeSpan)
        {
            connection._pingTimer = new Timer(static s => ((HubConnection)s!).OnPingTimer(), connection, interval, interval);
        }
        return connection;
    }

    internal static Uri BuildWebSocketUri(Uri hubUrl, string? accessToken)
    {
        var builder = new UriBuilder(hubUrl);
        builder.Scheme = builder.Scheme switch
        {
            "http" => "ws",
            "https" => "wss",
            _ => builder.Scheme,
        };
        if (!string.IsNullOrEmpty(accessToken))
        {
            var query = builder.Query.TrimStart('?');
            builder.Query = (query.Length > 0 ? query + "&" : "") + "access_token=" + Uri.EscapeDataString(accessToken);
        }
        return builder.Uri;
    }

    // ------------------------------------------------------------------ public surface

    /// <summary>Completes when the connection has ended. Result: the server's close error text, a description of the
    /// transport failure, or null for a clean close (including a local <see cref="DisposeAsync"/>). Never faults.</summary>
    public Task<string?> Closed => _closed.Task;

    public bool IsClosed => _isClosed;

    /// <summary>Total WebSocket payload bytes received (including the handshake response).</summary>
    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    /// <summary>Number of server-to-client invocations (type 1) received.</summary>
    public long InvocationsReceived => Volatile.Read(ref _invocationsReceived);

    /// <summary>All server invocations in order (args are clones). Requires <see cref="HubConnectionOptions.EnableMessageChannel"/>.
    /// Completes when the connection closes.</summary>
    public ChannelReader<(string Target, JsonElement[] Args)> Messages =>
        _channel?.Reader ?? throw new InvalidOperationException(
            "Messages channel is disabled; connect with HubConnectionOptions.EnableMessageChannel = true.");

    /// <summary>
    /// While true, the receive loop does not read from the socket, so the kernel buffers and then the server's
    /// transport buffers fill up (slow-consumer simulation). Takes effect before the next socket read: a read
    /// already in progress still completes and records already buffered are still dispatched.
    /// Client pings keep being sent. Setting false resumes.
    /// </summary>
    public bool PauseReading
    {
        get => Volatile.Read(ref _resumeGate) is not null;
        set
        {
            if (value)
            {
                Interlocked.CompareExchange(ref _resumeGate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), null);
            }
            else
            {
                Interlocked.Exchange(ref _resumeGate, null)?.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Registers a handler for server invocations of <paramref name="target"/> (case-insensitive). Handlers run
    /// synchronously on the receive loop, in registration order; keep them short. A throwing handler terminates
    /// the connection (Closed reports it). See <see cref="HubConnectionOptions.CloneHandlerArguments"/>.
    /// </summary>
    public void On(string target, Action<JsonElement[]> handler)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(handler);
        while (true)
        {
            var current = _handlers;
            var next = current is null
                ? new Dictionary<string, Action<JsonElement[]>[]>(StringComparer.OrdinalIgnoreCase)
                : new Dictionary<string, Action<JsonElement[]>[]>(current, StringComparer.OrdinalIgnoreCase);
            next[target] = next.TryGetValue(target, out var existing) ? [.. existing, handler] : [handler];
#pragma warning disable CS0420 // volatile field passed by ref: Interlocked has the right semantics
            if (Interlocked.CompareExchange(ref _handlers, next, current) == current)
#pragma warning restore CS0420
            {
                return;
            }
        }
    }

    /// <summary>Invokes a hub method and waits for its completion. Returns the "result" (a detached clone;
    /// <c>default</c>/Undefined when the method returns nothing). Throws <see cref="HubInvocationException"/> with the
    /// server's error text, or <see cref="HubConnectionClosedException"/> if the connection ends first.</summary>
    public async Task<JsonElement> InvokeAsync(string target, object?[] args, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ThrowIfClosed();
        var id = Interlocked.Increment(ref _nextInvocationId);
        var tcs = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pendingLock)
        {
            (_pending ??= new Dictionary<long, TaskCompletionSource<JsonElement>>())[id] = tcs;
        }
        if (_isClosed) // raced with shutdown, which may already have drained _pending
        {
            RemovePending(id);
            ThrowIfClosed();
        }
        try
        {
            await SendCoreAsync(id, target, args, ct).ConfigureAwait(false);
        }
        catch
        {
            RemovePending(id);
            throw;
        }
        if (!ct.CanBeCanceled)
        {
            return await tcs.Task.ConfigureAwait(false);
        }
        using var registration = ct.Register(() =>
        {
            RemovePending(id);
            tcs.TrySetCanceled(ct);
        });
        return await tcs.Task.ConfigureAwait(false);
    }

    /// <summary>Like <see cref="InvokeAsync(string, object?[], CancellationToken)"/> but deserializes the result.</summary>
    public async Task<T?> InvokeAsync<T>(string target, object?[] args, CancellationToken ct = default)
    {
        var result = await InvokeAsync(target, args, ct).ConfigureAwait(false);
        return result.ValueKind == JsonValueKind.Undefined ? default : result.Deserialize<T>(_serializerOptions);
    }

    /// <summary>Non-blocking invocation (no invocationId; the server sends no completion). Completes once written to the socket.</summary>
    public Task SendAsync(string target, object?[] args, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ThrowIfClosed();
        return SendCoreAsync(0, target, args, ct);
    }

    /// <summary>Sends raw bytes as one WebSocket text message (must be complete JSON records each ending with 0x1E).
    /// For protocol tests and pre-serialized load.</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> records, CancellationToken ct = default)
    {
        ThrowIfClosed();
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();
            await _ws.SendAsync(records, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Closes the WebSocket gracefully (close frame, wait up to CloseTimeout for the server's), then aborts.
    /// No SignalR close message is sent: ASP.NET Core servers do not accept one from clients.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _closed.Task.ConfigureAwait(false);
            return;
        }
        _localClose = true;
        PauseReading = false;
        if (!_isClosed)
        {
            try
            {
                using var cts = new CancellationTokenSource(_closeTimeout);
                if (await _sendLock.WaitAsync(_closeTimeout).ConfigureAwait(false))
                {
                    try
                    {
                        if (_ws.State == WebSocketState.Open)
                        {
                            await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token).ConfigureAwait(false);
                        }
                    }
                    finally
                    {
                        _sendLock.Release();
                    }
                }
                await _closed.Task.WaitAsync(_closeTimeout).ConfigureAwait(false);
            }
            catch
            {
                // fall through to abort
            }
        }
        _ws.Abort();
        await _closed.Task.ConfigureAwait(false);
        _ws.Dispose();
    }

    // ------------------------------------------------------------------ sending

    private async Task SendCoreAsync(long invocationId, string target, object?[]? args, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();
            var payload = WriteInvocation(invocationId, target, args);
            // Note: cancelling a WebSocket send mid-frame aborts the socket (WebSocket semantics).
            await _ws.SendAsync(payload, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
            if (_sendBuffer!.Capacity > 64 * 1024)
            {
                _sendBuffer = null; // don't keep a huge buffer per connection
                _jsonWriter = null;
            }
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private ReadOnlyMemory<byte> WriteInvocation(long invocationId, string target, object?[]? args)
    {
        var buffer = _sendBuffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        var writer = _jsonWriter;
        if (writer is null)
        {
            _jsonWriter = writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        }
        else
        {
            writer.Reset(buffer);
        }
        writer.WriteStartObject();
        writer.WriteNumber("type"u8, 1);
        if (invocationId > 0)
        {
            Span<byte> id = stackalloc byte[20];
            invocationId.TryFormat(id, out var idLength);
            writer.WriteString("invocationId"u8, id[..idLength]);
        }
        writer.WriteString("target"u8, target);
        writer.WriteStartArray("arguments"u8);
        if (args is not null)
        {
            foreach (var arg in args)
            {
                if (arg is null)
                {
                    writer.WriteNullValue();
                }
                else
                {
                    JsonSerializer.Serialize(writer, arg, arg.GetType(), _serializerOptions);
                }
            }
        }
        writer.WriteEndArray();
        writer.WriteEndObject();
        writer.Flush();
        buffer.GetSpan(1)[0] = RecordSeparator;
        buffer.Advance(1);
        return buffer.WrittenMemory;
    }

    private void OnPingTimer()
    {
        if (!_isClosed)
        {
            _ = SendPingAsync();
        }
    }

    private async Task SendPingAsync()
    {
        if (!_sendLock.Wait(0))
        {
            return; // a send is in progress, the server hears from us anyway
        }
        try
        {
            if (!_isClosed && _ws.State == WebSocketState.Open)
            {
                await _ws.SendAsync(PingMessage, WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch
        {
            // the receive loop notices dead sockets
        }
        finally
        {
            _sendLock.Release();
        }
    }

    // ------------------------------------------------------------------ receiving

    private async Task ReceiveLoopAsync()
    {
        Exception? failure = null;
        try
        {
            while (ProcessBufferedRecords())
            {
                var gate = Volatile.Read(ref _resumeGate);
                if (gate is not null)
                {
                    await gate.Task.ConfigureAwait(false);
                }
                EnsureReceiveSpace();
                var result = await _ws.ReceiveAsync(_buffer.AsMemory(_end), CancellationToken.None).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
                _end += result.Count;
                Volatile.Write(ref _bytesReceived, _bytesReceived + result.Count);
            }
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        await ShutdownAsync(failure).ConfigureAwait(false);
    }

    /// <summary>Dispatches every complete record in the buffer. Returns false when the connection must end.</summary>
    private bool ProcessBufferedRecords()
    {
        while (true)
        {
            var index = _buffer.AsSpan(_scanned, _end - _scanned).IndexOf(RecordSeparator);
            if (index < 0)
            {
                _scanned = _end;
                break;
            }
            var recordEnd = _scanned + index;
            var record = new ReadOnlyMemory<byte>(_buffer, _start, recordEnd - _start);
            _start = _scanned = recordEnd + 1;
            if (!ProcessRecord(record))
            {
                return false;
            }
        }
        if (_start == _end)
        {
            _start = _end = _scanned = 0;
            if (_buffer.Length > Math.Max(_initialBufferSize, 64 * 1024))
            {
                _buffer = new byte[_initialBufferSize]; // shrink after a large message
            }
        }
        return true;
    }

    private void EnsureReceiveSpace()
    {
        var minFree = Math.Min(1024, _initialBufferSize / 4);
        if (_buffer.Length - _end >= minFree)
        {
            return;
        }
        var pending = _end - _start;
        byte[] target = _buffer;
        if (_buffer.Length - pending < Math.Max(minFree, _buffer.Length / 2))
        {
            if (_buffer.Length >= _maxMessageSize)
            {
                throw new InvalidDataException($"Incoming record exceeds MaxMessageSize ({_maxMessageSize} bytes).");
            }
            target = new byte[(int)Math.Min((long)_buffer.Length * 2, _maxMessageSize)];
        }
        Buffer.BlockCopy(_buffer, _start, target, 0, pending);
        _buffer = target;
        _scanned -= _start;
        _end = pending;
        _start = 0;
    }

    private bool ProcessRecord(ReadOnlyMemory<byte> record)
    {
        var span = record.Span;
        var reader = new Utf8JsonReader(span);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new InvalidDataException("Hub message is not a JSON object.");
        }

        int type = -1;
        long invocationId = -1;
        int argsStart = -1, argsEnd = -1, resultStart = -1, resultEnd = -1;
        string? error = null;
        Span<char> targetStack = stackalloc char[128];
        Span<char> target = targetStack[..0];

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.GetInt32();
            }
            else if (reader.ValueTextEquals("invocationId"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped
                    && Utf8Parser.TryParse(reader.ValueSpan, out long id, out var consumed)
                    && consumed == reader.ValueSpan.Length)
                {
                    invocationId = id;
                }
                else
                {
                    invocationId = -2; // present but not one of ours
                }
            }
            else if (reader.ValueTextEquals("target"u8))
            {
                reader.Read();
                var buffer = reader.ValueSpan.Length <= targetStack.Length ? targetStack : new char[reader.ValueSpan.Length];
                target = buffer[..reader.CopyString(buffer)];
            }
            else if (reader.ValueTextEquals("arguments"u8))
            {
                reader.Read();
                argsStart = (int)reader.TokenStartIndex;
                reader.Skip();
                argsEnd = (int)reader.BytesConsumed;
            }
            else if (reader.ValueTextEquals("result"u8))
            {
                reader.Read();
                resultStart = (int)reader.TokenStartIndex;
                reader.Skip();
                resultEnd = (int)reader.BytesConsumed;
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                error = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (!_handshakeDone)
        {
            if (error is not null)
            {
                _closeError = error;
                _handshake.TrySetException(new HubHandshakeException(error));
                return false;
            }
            _handshakeDone = true;
            _handshake.TrySetResult();
            return true;
        }

        switch (type)
        {
            case 1: // Invocation
                Volatile.Write(ref _invocationsReceived, _invocationsReceived + 1);
                DispatchInvocation(target, record, argsStart, argsEnd);
                return true;
            case 3: // Completion
                if (invocationId > 0)
                {
                    var tcs = RemovePending(invocationId);
                    if (tcs is not null)
                    {
                        if (error is not null)
                        {
                            tcs.TrySetException(new HubInvocationException(error));
                        }
                        else
                        {
                            tcs.TrySetResult(resultStart >= 0 ? ParseDetached(span[resultStart..resultEnd]) : default);
                        }
                    }
                }
                return true;
            case 7: // Close
                _closeError = error;
                return false;
            default: // 6 Ping, stream items, acks, sequence, ...: ignored
                return true;
        }
    }

    private void DispatchInvocation(ReadOnlySpan<char> target, ReadOnlyMemory<byte> record, int argsStart, int argsEnd)
    {
        Action<JsonElement[]>[]? handlers = null;
        var handlerMap = _handlers;
        if (handlerMap is not null)
        {
            handlerMap.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(target, out handlers);
        }
        if (handlers is null && _channel is null)
        {
            return; // nobody listening: no allocation at all
        }

        JsonElement[]? cloned = null;
        if (_channel is not null || _cloneHandlerArgs)
        {
            cloned = argsStart >= 0 ? ToArray(ParseDetached(record.Span[argsStart..argsEnd])) : [];
        }

        if (handlers is not null)
        {
            if (cloned is not null)
            {
                InvokeHandlers(handlers, cloned, target);
            }
            else if (argsStart < 0)
            {
                InvokeHandlers(handlers, [], target);
            }
            else
            {
                using var document = JsonDocument.Parse(record[argsStart..argsEnd]);
                var array = document.RootElement;
                var length = array.GetArrayLength();
                var args = RentEphemeralArgs(length);
                var i = 0;
                foreach (var element in array.EnumerateArray())
                {
                    args[i++] = element;
                }
                InvokeHandlers(handlers, args, target);
                Array.Clear(args);
            }
        }

        _channel?.Writer.TryWrite((new string(target), cloned!));
    }

    private static void InvokeHandlers(Action<JsonElement[]>[] handlers, JsonElement[] args, ReadOnlySpan<char> target)
    {
        foreach (var handler in handlers)
        {
            try
            {
                handler(args);
            }
            catch (Exception ex)
            {
                throw new HandlerFailedException(
                    $"Handler for '{target}' threw {ex.GetType().Name}: {ex.Message}", ex);
            }
        }
    }

    private JsonElement[] RentEphemeralArgs(int length)
    {
        if (length >= 8)
        {
            return new JsonElement[length];
        }
        var cache = _ephemeralArgArrays ??= new JsonElement[]?[8];
        return cache[length] ??= new JsonElement[length];
    }

    private static JsonElement ParseDetached(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        reader.Read();
        return JsonElement.ParseValue(ref reader); // owns a copy of the bytes; no pooled memory to return
    }

    private static JsonElement[] ToArray(JsonElement array)
    {
        if (array.ValueKind != JsonValueKind.Array)
        {
            return [array];
        }
        var result = new JsonElement[array.GetArrayLength()];
        var i = 0;
        foreach (var element in array.EnumerateArray())
        {
            result[i++] = element;
        }
        return result;
    }

    // ------------------------------------------------------------------ shutdown

    private async Task ShutdownAsync(Exception? failure)
    {
        _isClosed = true;
        _pingTimer?.Dispose();

        string? error = _closeError;
        if (error is null && failure is not null && !_localClose)
        {
            error = failure is HandlerFailedException or InvalidDataException
                ? failure.Message
                : $"Connection lost: {failure.GetType().Name}: {failure.Message}";
        }

        var closedException = new HubConnectionClosedException(error ?? "The connection was closed.", failure);
        _handshake.TrySetException(closedException);
        _ = _handshake.Task.Exception; // observed

        List<TaskCompletionSource<JsonElement>>? pending = null;
        lock (_pendingLock)
        {
            if (_pending is { Count: > 0 })
            {
                pending = [.. _pending.Values];
                _pending.Clear();
            }
        }
        if (pending is not null)
        {
            foreach (var tcs in pending)
            {
                tcs.TrySetException(closedException);
            }
        }
        _channel?.Writer.TryComplete();

        // Finish the WebSocket closing handshake if the server started it (or sent a close message).
        if (_ws.State is WebSocketState.Open or WebSocketState.CloseReceived && !_localClose)
        {
            try
            {
                using var cts = new CancellationTokenSource(_closeTimeout);
                if (await _sendLock.WaitAsync(_closeTimeout).ConfigureAwait(false))
                {
                    try
                    {
                        await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        _sendLock.Release();
                    }
                }
            }
            catch
            {
                // ignore; aborting below
            }
        }
        if (!_localClose)
        {
            _ws.Abort();
            _ws.Dispose();
        }
        _closed.TrySetResult(error);
    }

    // ------------------------------------------------------------------ helpers

    private TaskCompletionSource<JsonElement>? RemovePending(long id)
    {
        lock (_pendingLock)
        {
            return _pending is not null && _pending.Remove(id, out var tcs) ? tcs : null;
        }
    }

    private void ThrowIfClosed()
    {
        if (_isClosed)
        {
            throw new HubConnectionClosedException(_closed.Task.IsCompleted
                ? _closed.Task.Result ?? "The connection was closed."
                : _closeError ?? "The connection was closed.");
        }
    }
}

internal sealed class HandlerFailedException(string message, Exception inner) : Exception(message, inner);
