using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery.Internal;

namespace OpencodeGateway.Delivery;

/// <summary>
/// Closes hub connections whose client sends nothing for <see cref="Timeout"/>. SignalR's own client timeout starts with
/// the client's first ping: a client that completes the handshake and then says nothing (a dead tab, a stuck or hostile
/// client) would hold its connection for ever. Kestrel's connection middleware (<see cref="Middleware"/>) notes when
/// each connection last received a byte; a hub's WebSocket is then watched (<see cref="Watch"/>), and once a second the
/// ones silent for longer than the timeout are aborted (the client reconnects and rejoins with <c>since</c>).
/// </summary>
public sealed class SilentConnections(TimeProvider time, GatewayMetrics metrics, ILogger<SilentConnections> logger) : BackgroundService
{
    private static readonly TimeSpan ScanInterval = TimeSpan.FromSeconds(1);
    private readonly ConcurrentDictionary<ReceiveClock, byte> _watched = new();

    /// <summary>How long a watched connection may send nothing; set from the hub's client timeout.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Kestrel connection middleware: every connection's input notes when it last received bytes.</summary>
    public ConnectionDelegate Middleware(ConnectionDelegate next) => async connection =>
    {
        var clock = new ReceiveClock(connection, time);
        connection.Items[typeof(ReceiveClock)] = clock;
        connection.Transport = new ClockedPipe(connection.Transport, clock);
        try
        {
            await next(connection);
        }
        finally
        {
            _watched.TryRemove(clock, out _);
        }
    };

    /// <summary>
    /// Watches the connections of WebSocket requests under <paramref name="path"/> (SignalR's other transports receive
    /// their client's messages on other requests: only SignalR's own timeout, after the first ping, applies to them).
    /// </summary>
    public static IApplicationBuilder UseSilentConnectionWatch(IApplicationBuilder app, PathString path)
    {
        var watch = app.ApplicationServices.GetRequiredService<SilentConnections>();
        return app.Use((context, next) =>
        {
            // (the WebSockets middleware runs inside the hub's endpoint, after this: read the upgrade itself)
            if (context.Request.Path.StartsWithSegments(path)
                && (context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true
                    || context.Features.Get<IHttpExtendedConnectFeature>()?.IsExtendedConnect == true))
            {
                watch.Watch(context);
            }

            return next(context);
        });
    }

    /// <summary>Watches the connection a request came on (a hub's WebSocket: its client must keep talking).</summary>
    public void Watch(HttpContext context)
    {
        if (context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(typeof(ReceiveClock), out var clock) == true)
        {
            _watched.TryAdd((ReceiveClock)clock!, 0);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(ScanInterval, time);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await timer.WaitForNextTickAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var now = time.GetTimestamp();
            foreach (var clock in _watched.Keys)
            {
                if (time.GetElapsedTime(clock.LastReceived, now) > Timeout && _watched.TryRemove(clock, out _))
                {
                    OutboxLog.SilentConnectionClosed(logger, clock.Connection.ConnectionId, Timeout);
                    metrics.SilentConnectionDropped();
                    clock.Connection.Abort(new ConnectionAbortedException($"The client sent nothing for {Timeout}."));
                }
            }
        }
    }

    /// <summary>When one connection last received bytes.</summary>
    private sealed class ReceiveClock(ConnectionContext connection, TimeProvider time)
    {
        private long _lastReceived = time.GetTimestamp();

        public ConnectionContext Connection { get; } = connection;

        public long LastReceived => Volatile.Read(ref _lastReceived);

        public void Received() => Volatile.Write(ref _lastReceived, time.GetTimestamp());
    }

    /// <summary>The connection's transport, its input reporting each read that brought bytes.</summary>
    private sealed class ClockedPipe(IDuplexPipe inner, ReceiveClock clock) : IDuplexPipe
    {
        public PipeReader Input { get; } = new ClockedReader(inner.Input, clock);
        public PipeWriter Output => inner.Output;
    }

    private sealed class ClockedReader(PipeReader inner, ReceiveClock clock) : PipeReader
    {
        // A read completes when bytes arrived past what was examined: each one that brings bytes counts.
        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
            Note(await inner.ReadAsync(cancellationToken));

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            Note(result);
            return true;
        }

        private ReadResult Note(ReadResult result)
        {
            if (!result.IsCanceled && !result.Buffer.IsEmpty)
            {
                clock.Received();
            }

            return result;
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }
}
