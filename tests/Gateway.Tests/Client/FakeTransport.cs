using System.Threading.Channels;
using OpencodeGateway.Client;
using OpencodeGateway.Client.Internal;

namespace OpencodeGateway.Tests.Client;

/// <summary>
/// A hub connection the test plays the server of: every call waits until the test answers it
/// (<see cref="NextCallAsync"/>), and the test pushes what the server would send through <see cref="Server"/>.
/// </summary>
internal sealed class FakeTransport : IGatewayTransport
{
    private readonly Channel<HubCall> _calls = Channel.CreateUnbounded<HubCall>();

    public IGatewayTransportEvents Server { get; private set; } = null!;

    /// <summary>When set, the next starts fail with it.</summary>
    public Exception? FailStart { get; set; }

    public int Starts { get; private set; }

    /// <summary>A client on this transport, with <paramref name="configure"/>d options.</summary>
    public static (GatewayClient Client, FakeTransport Transport) Client(Action<GatewayClientOptions>? configure = null)
    {
        var options = new GatewayClientOptions { Url = new Uri("http://gateway.test/hubs/session") };
        configure?.Invoke(options);
        var transport = new FakeTransport();
        var client = new GatewayClient(options, events =>
        {
            transport.Server = events;
            return transport;
        }, null);
        return (client, transport);
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Starts++;
        return FailStart is { } failure ? Task.FromException(failure) : Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Server.OnClosed(null);
        return Task.CompletedTask;
    }

    public Task<object?> InvokeAsync(string method, Type resultType, object?[] args, CancellationToken cancellationToken)
    {
        var call = new HubCall(method, args);
        _calls.Writer.TryWrite(call);
        return call.Result.Task;
    }

    /// <summary>The next call the client made; fails when it is not <paramref name="method"/> or none comes within 5 s.</summary>
    public async Task<HubCall> NextCallAsync(string method)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var call = await _calls.Reader.ReadAsync(timeout.Token);
        Assert.Equal(method, call.Method);
        return call;
    }

    /// <summary>Whether a call is waiting to be answered (read it with <see cref="NextCallAsync"/>).</summary>
    public bool HasCall => _calls.Reader.Count > 0;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public sealed record HubCall(string Method, object?[] Args)
    {
        public TaskCompletionSource<object?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public T Argument<T>() => Assert.IsType<T>(Assert.Single(Args));
    }
}
