using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Bench.Bare;

// Scenario B's baseline: what a WebSocket fan-out costs on this machine without the gateway. One subscription to the
// fake opencode's /global/event; each text delta goes to every connection of its session as the bytes the gateway
// sends for it (its compact delta frame, JSON or MessagePack hub protocol), built once per event and written to each
// connection without waiting on it. No SignalR, hubs, groups, authentication, sequencer, history or snapshots.
// Clients: the official SignalR client (WebSockets, skipNegotiation) on /ws?session=ID; the server answers the
// handshake, pings every 10 s, reads and ignores whatever the client sends.
//   dotnet Gateway.BareBroadcaster.dll --urls http://127.0.0.1:PORT --upstream=http://127.0.0.1:FAKE_PORT/
var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
var upstream = new Uri(builder.Configuration["upstream"] ?? throw new ArgumentException("--upstream=URL of the fake opencode is required"));
var app = builder.Build();
var broadcaster = new Broadcaster();
app.UseWebSockets();
app.Map("/ws", broadcaster.AcceptAsync);
app.MapGet("/readyz", () => broadcaster.UpstreamConnected ? Results.Ok() : Results.StatusCode(503));
// The three counters the load generator reads from the gateway's /metrics (OpenTelemetry's names), with the same values.
app.MapGet("/metrics", () => Results.Text(string.Create(CultureInfo.InvariantCulture,
    $"dotnet_process_cpu_time_seconds_total {Environment.CpuUsage.TotalTime.TotalSeconds:R}\n" +
    $"dotnet_gc_heap_total_allocated_bytes_total {GC.GetTotalAllocatedBytes()}\n" +
    $"dotnet_thread_pool_work_item_count_total {ThreadPool.CompletedWorkItemCount}\n"), "text/plain"));
using var pings = new Timer(_ => broadcaster.Ping(), null, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(10));
var pump = Task.Run(() => broadcaster.PumpAsync(upstream, app.Lifetime.ApplicationStopping));
await app.RunAsync();
await pump;

namespace OpencodeGateway.Bench.Bare
{
    internal sealed class Broadcaster
    {
        private static readonly byte[] DeltaType = "\"type\":\"message.part.delta\""u8.ToArray();
        private static readonly byte[] SessionKey = "\"sessionID\":\""u8.ToArray();
        private static readonly byte[] DeltaKey = "\"delta\":\""u8.ToArray();
        private readonly Dictionary<string, Session> _sessions = new(StringComparer.Ordinal);
        private readonly Lock _sessionsLock = new();
        private volatile bool _upstreamConnected;
        private int _lastHandle;

        public bool UpstreamConnected => _upstreamConnected;

        public async Task AcceptAsync(HttpContext context)
        {
            if (!context.WebSockets.IsWebSocketRequest || context.Request.Query["session"] is not [{ Length: > 0 } sessionId])
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var ct = context.RequestAborted;
            var buffer = new byte[4096];
            if (await ReadHandshakeAsync(socket, buffer, ct) is not { } protocol)
            {
                return;
            }

            await socket.SendAsync("{}\u001e"u8.ToArray().AsMemory(), WebSocketMessageType.Text, true, ct);
            var connection = new Connection(socket, protocol == "messagepack");
            Session session;
            lock (_sessionsLock)
            {
                if (!_sessions.TryGetValue(sessionId, out session!))
                {
                    session = new Session(++_lastHandle);
                    _sessions[sessionId] = session;
                }
            }

            session.Add(connection);
            try
            {
                while (!(await socket.ReceiveAsync(buffer.AsMemory(), ct)).MessageType.Equals(WebSocketMessageType.Close))
                {
                }
            }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException)
            {
            }
            finally
            {
                session.Remove(connection);
                connection.Close();
            }
        }

        /// <summary>The SignalR handshake request (<c>{"protocol":"json"|"messagepack","version":1}</c> then 0x1e).</summary>
        private static async Task<string?> ReadHandshakeAsync(WebSocket socket, byte[] buffer, CancellationToken ct)
        {
            var length = 0;
            while (Array.IndexOf(buffer, (byte)0x1e, 0, length) < 0)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(length), ct);
                if (read.MessageType == WebSocketMessageType.Close || read.Count == 0 || length + read.Count >= buffer.Length)
                {
                    return null;
                }

                length += read.Count;
            }

            using var handshake = JsonDocument.Parse(buffer.AsMemory(0, Array.IndexOf(buffer, (byte)0x1e, 0, length)));
            return handshake.RootElement.GetProperty("protocol").GetString();
        }

        public void Ping()
        {
            List<Session> sessions;
            lock (_sessionsLock)
            {
                sessions = [.. _sessions.Values];
            }

            foreach (var session in sessions)
            {
                session.Ping();
            }
        }

        public async Task PumpAsync(Uri upstream, CancellationToken ct)
        {
            using var http = new HttpClient { BaseAddress = upstream, Timeout = Timeout.InfiniteTimeSpan };
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    using var response = await http.GetAsync("global/event", HttpCompletionOption.ResponseHeadersRead, ct);
                    response.EnsureSuccessStatusCode();
                    _upstreamConnected = true;
                    var reader = PipeReader.Create(await response.Content.ReadAsStreamAsync(ct));
                    while (true)
                    {
                        var result = await reader.ReadAsync(ct);
                        var buffer = result.Buffer;
                        while (buffer.PositionOf((byte)'\n') is { } end)
                        {
                            var line = buffer.Slice(0, end);
                            OnLine(line.IsSingleSegment ? line.FirstSpan : line.ToArray());
                            buffer = buffer.Slice(buffer.GetPosition(1, end));
                        }

                        reader.AdvanceTo(buffer.Start, buffer.End);
                        if (result.IsCompleted)
                        {
                            break;
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                }
                finally
                {
                    _upstreamConnected = false;
                }

                await Task.Delay(200, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        private void OnLine(ReadOnlySpan<byte> line)
        {
            if (!line.StartsWith("data: "u8) || line.IndexOf(DeltaType) < 0)
            {
                return;
            }

            var sessionId = Value(line, SessionKey);
            var delta = Value(line, DeltaKey);
            Session? session;
            lock (_sessionsLock)
            {
                _sessions.TryGetValue(Encoding.UTF8.GetString(sessionId), out session);
            }

            session?.Deliver(delta);
        }

        /// <summary>The raw (still JSON-escaped) text of a string member: the fake upstream's are plain.</summary>
        private static ReadOnlySpan<byte> Value(ReadOnlySpan<byte> line, ReadOnlySpan<byte> key)
        {
            var start = line.IndexOf(key);
            if (start < 0)
            {
                return [];
            }

            var value = line[(start + key.Length)..];
            return value[..Math.Max(0, value.IndexOf((byte)'"'))];
        }
    }

    /// <summary>One session's connections and the position its deltas would have in the gateway (seq, offset).</summary>
    internal sealed class Session(int handle)
    {
        private const int PartHandle = 1;
        private static readonly byte[] JsonPing = "{\"type\":6}\u001e"u8.ToArray();
        private static readonly byte[] MessagePackPing = [0x02, 0x91, 0x06];
        private readonly Lock _membersLock = new();
        private Connection[] _members = [];
        private long _seq;
        private long _offset;

        public void Add(Connection connection)
        {
            lock (_membersLock)
            {
                _members = [.. _members, connection];
            }
        }

        public void Remove(Connection connection)
        {
            lock (_membersLock)
            {
                _members = Array.FindAll(_members, m => m != connection);
            }
        }

        /// <summary>Called by the pump only.</summary>
        public void Deliver(ReadOnlySpan<byte> delta)
        {
            var seq = ++_seq;
            var offset = _offset;
            _offset += delta.Length; // the fake's deltas are ASCII: UTF-16 length = bytes
            byte[]? json = null;
            byte[]? messagePack = null;
            foreach (var member in Volatile.Read(ref _members))
            {
                member.Send(member.MessagePack ? messagePack ??= MessagePackFrame(seq, offset, delta) : json ??= JsonFrame(seq, offset, delta));
            }
        }

        public void Ping()
        {
            foreach (var member in Volatile.Read(ref _members))
            {
                member.Send(member.MessagePack ? MessagePackPing : JsonPing);
            }
        }

        /// <summary>The JSON hub protocol's invocation of <c>D(s, seq, h, offset, delta)</c>, as the gateway writes it.</summary>
        private byte[] JsonFrame(long seq, long offset, ReadOnlySpan<byte> delta)
        {
            var frame = new byte[64 + delta.Length];
            var n = Append(frame, 0, "{\"type\":1,\"target\":\"D\",\"arguments\":["u8);
            n = AppendNumber(frame, n, handle);
            n = AppendNumber(frame, Append(frame, n, ","u8), seq);
            n = AppendNumber(frame, Append(frame, n, ","u8), PartHandle);
            n = AppendNumber(frame, Append(frame, n, ","u8), offset);
            n = Append(frame, Append(frame, Append(frame, n, ",\""u8), delta), "\"]}\u001e"u8);
            return frame[..n];
        }

        /// <summary>The MessagePack hub protocol's invocation of the same, length-prefixed, as the gateway writes it.</summary>
        private byte[] MessagePackFrame(long seq, long offset, ReadOnlySpan<byte> delta)
        {
            var body = new ArrayBufferWriter<byte>(32 + delta.Length);
            var writer = new MessagePack.MessagePackWriter(body);
            writer.WriteArrayHeader(6);
            writer.Write(1); // invocation
            writer.WriteMapHeader(0); // headers
            writer.WriteNil(); // no invocation id
            writer.Write("D");
            writer.WriteArrayHeader(5);
            writer.Write(handle);
            writer.Write(seq);
            writer.Write(PartHandle);
            writer.Write((int)offset);
            writer.WriteString(delta);
            writer.WriteArrayHeader(0); // stream ids
            writer.Flush();
            var frame = new byte[5 + body.WrittenCount];
            var n = 0;
            for (var length = (uint)body.WrittenCount; ; length >>= 7)
            {
                frame[n++] = (byte)(length < 0x80 ? length : (length & 0x7f) | 0x80);
                if (length < 0x80)
                {
                    break;
                }
            }

            body.WrittenSpan.CopyTo(frame.AsSpan(n));
            return frame[..(n + body.WrittenCount)];
        }

        private static int Append(byte[] frame, int at, ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(frame.AsSpan(at));
            return at + bytes.Length;
        }

        private static int AppendNumber(byte[] frame, int at, long value)
        {
            Utf8Formatter.TryFormat(value, frame.AsSpan(at), out var written);
            return at + written;
        }
    }

    /// <summary>
    /// Frames waiting for one connection: written on the sender's thread when nothing is in flight, else queued behind
    /// the write in flight (the gateway's outbox does the same); past 10,000 queued frames the connection is dropped.
    /// </summary>
    internal sealed class Connection(WebSocket socket, bool messagePack)
    {
        private const int MaxQueued = 10_000;
        private readonly Queue<byte[]> _queue = new();
        private bool _writing;
        private bool _closed;

        public bool MessagePack => messagePack;

        private WebSocketMessageType MessageType => messagePack ? WebSocketMessageType.Binary : WebSocketMessageType.Text;

        public void Send(byte[] frame)
        {
            lock (_queue)
            {
                if (_closed)
                {
                    return;
                }

                if (_writing)
                {
                    if (_queue.Count < MaxQueued)
                    {
                        _queue.Enqueue(frame);
                        return;
                    }

                    _closed = true;
                    _queue.Clear();
                }
                else
                {
                    _writing = true;
                }
            }

            if (_closed)
            {
                socket.Abort();
                return;
            }

            ValueTask write;
            try
            {
                write = socket.SendAsync(frame.AsMemory(), MessageType, true, CancellationToken.None);
            }
            catch (Exception)
            {
                Close();
                return;
            }

            if (!write.IsCompletedSuccessfully)
            {
                _ = DrainAsync(write);
                return;
            }

            lock (_queue)
            {
                if (_closed || _queue.Count == 0)
                {
                    _writing = false;
                    return;
                }
            }

            _ = DrainAsync(YieldAsync());
        }

        public void Close()
        {
            lock (_queue)
            {
                _closed = true;
                _queue.Clear();
            }
        }

        private static async ValueTask YieldAsync() => await Task.Yield();

        private async Task DrainAsync(ValueTask inFlight)
        {
            try
            {
                await inFlight;
                while (true)
                {
                    byte[] frame;
                    lock (_queue)
                    {
                        if (_closed || !_queue.TryDequeue(out frame!))
                        {
                            _writing = false;
                            return;
                        }
                    }

                    await socket.SendAsync(frame.AsMemory(), MessageType, true, CancellationToken.None);
                }
            }
            catch (Exception)
            {
                Close();
            }
        }
    }
}
