using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Gateway.Tests.SignalR;

/// <summary>The hub the lifetime manager specs run on (it has no methods: the specs send through the manager).</summary>
public sealed class SpecHub : Hub;

/// <summary>
/// A server-side <see cref="HubConnectionContext"/> over an in-memory transport, with the client's end of it: what the
/// lifetime manager writes goes through SignalR's own write path (JSON protocol, the connection's pipe and its
/// backpressure) and is parsed back here. A client that never calls <see cref="ReadAsync"/> is a stalled client: once its
/// pipe holds <c>pauseWriterThreshold</c> bytes, writes to it stop completing.
/// </summary>
internal sealed class TestHubConnection : IAsyncDisposable
{
    private static readonly JsonHubProtocol Json = new(Options.Create(new JsonHubProtocolOptions()));
    private static int _ids;

    private readonly Pipe _toClient;
    private readonly Pipe _fromClient = new();
    private readonly Queue<HubMessage> _parsed = new();

    public TestHubConnection(string? userId = null, long pauseWriterThreshold = 64 * 1024)
    {
        _toClient = new Pipe(new PipeOptions(pauseWriterThreshold: pauseWriterThreshold, resumeWriterThreshold: pauseWriterThreshold / 2,
            useSynchronizationContext: false));
        var id = $"c{Interlocked.Increment(ref _ids)}-{Guid.NewGuid():N}"[..20];
        var transport = new DuplexPipe(_fromClient.Reader, _toClient.Writer);
        var application = new DuplexPipe(_toClient.Reader, _fromClient.Writer);
        Context = new JsonConnectionContext(new DefaultConnectionContext(id, transport, application)) { UserIdentifier = userId };
    }

    public HubConnectionContext Context { get; }

    public string Id => Context.ConnectionId;

    /// <summary>The next message the server wrote, within <paramref name="timeout"/> (default 10 s).</summary>
    public async Task<InvocationMessage> ReadAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            if (_parsed.TryDequeue(out var message))
            {
                return Assert.IsType<InvocationMessage>(message);
            }

            ReadResult result;
            try
            {
                result = await _toClient.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"connection {Id}: no message within {(timeout ?? TimeSpan.FromSeconds(10)).TotalSeconds} s");
            }

            Parse(result);
            if (result.IsCompleted && _parsed.Count == 0)
            {
                throw new InvalidOperationException($"connection {Id}: closed");
            }
        }
    }

    /// <summary>Reads <paramref name="count"/> messages and returns their single string argument each.</summary>
    public async Task<List<string>> ReadArgumentsAsync(int count, string target = "Hello", TimeSpan? timeout = null)
    {
        var received = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var message = await ReadAsync(timeout);
            Assert.Equal(target, message.Target);
            received.Add((string)Assert.Single(message.Arguments)!);
        }

        return received;
    }

    /// <summary>Whatever the server wrote so far, without waiting.</summary>
    public List<InvocationMessage> ReadAvailable()
    {
        if (_toClient.Reader.TryRead(out var result))
        {
            Parse(result);
        }

        var messages = new List<InvocationMessage>();
        while (_parsed.TryDequeue(out var message))
        {
            messages.Add(Assert.IsType<InvocationMessage>(message));
        }

        return messages;
    }

    private void Parse(ReadResult result)
    {
        var buffer = result.Buffer;
        while (Json.TryParseMessage(ref buffer, StringArguments.Instance, out var message))
        {
            _parsed.Enqueue(message);
        }

        _toClient.Reader.AdvanceTo(buffer.Start, buffer.End);
    }

    public async ValueTask DisposeAsync()
    {
        await _toClient.Reader.CompleteAsync();
        await _fromClient.Writer.CompleteAsync();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    /// <summary>A connection whose handshake chose JSON (the handshake itself is the hub dispatcher's, not under test).</summary>
    private sealed class JsonConnectionContext(ConnectionContext connection)
        : HubConnectionContext(connection, new HubConnectionContextOptions(), NullLoggerFactory.Instance)
    {
        public override IHubProtocol Protocol => Json;
    }

    /// <summary>Every invocation the specs send carries one string.</summary>
    private sealed class StringArguments : IInvocationBinder
    {
        public static readonly StringArguments Instance = new();

        public IReadOnlyList<Type> GetParameterTypes(string methodName) => [typeof(string)];

        public Type GetReturnType(string invocationId) => typeof(object);

        public Type GetStreamItemType(string streamId) => typeof(object);
    }
}
