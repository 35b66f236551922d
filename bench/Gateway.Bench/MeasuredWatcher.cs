using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Bench;

/// <summary>
/// One session watched by the Gateway.Client package, keeping only its position (<see cref="WatchOptions.PositionOnly"/>):
/// the package applies the client rules (join, rejoin with <c>since</c> after a drop or a gap, a snapshot for a new
/// epoch, reconnect); this records what the bench measures of it from the package's updates. Every text delta applied
/// goes to <see cref="LatencySinks"/> as its arrival time − the fake upstream's emit time carried in the delta, and the
/// times of the latest drop, reconnect, rejoin and first event applied after it are kept.
/// </summary>
/// <remarks>
/// Connects with <c>?events=full</c> (every event as a <see cref="SessionEvent"/> in both arms of a comparison),
/// WebSockets without negotiate, as clients behind a load balancer do.
/// </remarks>
internal sealed class MeasuredWatcher : IAsyncDisposable
{
    /// <summary>The header cluster.sh's nginx adds to every response: which node answered.</summary>
    private const string ServedByHeader = "X-Gateway-Upstream";

    private readonly Lock _gate = new();
    private bool _connectedOnce;
    private bool _awaitingLive;
    private long _joinedUs;
    private long? _markUs;
    private List<double>? _recorded;

    private MeasuredWatcher(string sessionId, int node)
    {
        SessionId = sessionId;
        Node = node;
    }

    public GatewayClient Client { get; private set; } = null!;
    public GatewaySession Session { get; private set; } = null!;
    public string SessionId { get; }

    /// <summary>The node it connected to (1-based), 0 when behind the load balancer or on a single node.</summary>
    public int Node { get; }

    /// <summary>Behind cluster.sh's nginx: the address of the node serving its current connection (nginx's <see cref="ServedByHeader"/>).</summary>
    public string? ServedBy { get; private set; }

    /// <summary>Whether the connection is down for good (it dropped without automatic reconnect).</summary>
    public bool IsClosed => Client.State == GatewayConnectionState.Disconnected;

    /// <summary>The first gaps it saw (at most 5): when, where, and how long after its latest join's result.</summary>
    public List<string> GapLog { get; } = [];

    /// <summary>Where the latency of each applied text delta goes (µs); see <see cref="MeasureInto"/>.</summary>
    public IReadOnlyList<Histogram> LatencySinks { get; private set; } = [];

    public (long Epoch, long Seq) Position => (Session.View.Epoch, Session.View.Seq);
    public long Applied { get; private set; }
    public int Duplicates { get; private set; }
    public int Gaps { get; private set; }
    public int EventsOfNewerEpochBeforeItsSnapshot { get; private set; }
    public int PushedSnapshots { get; private set; }
    public int Recoveries { get; private set; }
    public int Snapshots { get; private set; }
    public int Reconnects { get; private set; }
    public List<string> Failures { get; } = [];

    /// <summary>
    /// Times (µs of <see cref="FakeUpstream.NowMicros"/>) of the latest drop (the connection closed, or is reconnecting
    /// by itself) and what followed it. A drop also empties <see cref="LatencySinks"/>: a client that lost its node is
    /// measured by how long it takes to come back, not by the latency of what it then catches up on.
    /// </summary>
    public long? DisconnectedUs { get; private set; }
    public long? ReconnectedUs { get; private set; }
    public long? RejoinedUs { get; private set; }
    /// <summary>Whether the latest rejoin after a drop recovered from <c>since</c> (false: a snapshot).</summary>
    public bool? RejoinRecovered { get; private set; }
    /// <summary>The first event applied in order after the latest drop's rejoin: the client is live again.</summary>
    public long? LiveAgainUs { get; private set; }

    /// <summary>After <see cref="Mark"/>: when the first text delta emitted after the mark, and the first pushed snapshot, arrived.</summary>
    public long? FirstEventAfterMarkUs { get; private set; }
    public long? SnapshotAfterMarkUs { get; private set; }

    public static async Task<MeasuredWatcher> StartAsync(Uri hubUrl, string sessionId, int node, bool reconnect)
    {
        var watcher = new MeasuredWatcher(sessionId, node);
        watcher.Client = new GatewayClient(new GatewayClientOptions
        {
            Url = hubUrl,
            ApiKey = GatewayProcess.ApiKey,
            SkipNegotiation = true,
            Events = GatewayEventForm.Full,
            AutomaticReconnect = reconnect,
            ReconnectDelays = [TimeSpan.Zero, TimeSpan.FromMilliseconds(250)],
            HandshakeTimeout = TimeSpan.FromSeconds(60),
            ConnectTimeout = TimeSpan.FromSeconds(60),
            // The official client's WebSocket, keeping the response's headers: behind cluster.sh's nginx,
            // X-Gateway-Upstream names the node that took the connection.
            ConfigureConnection = o => o.WebSocketFactory = async (context, ct) =>
            {
                var socket = new ClientWebSocket();
                socket.Options.CollectHttpResponseDetails = true;
                foreach (var (name, value) in context.Options.Headers)
                {
                    socket.Options.SetRequestHeader(name, value);
                }

                try
                {
                    await socket.ConnectAsync(context.Uri, ct);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }

                watcher.ServedBy = socket.HttpResponseHeaders?.TryGetValue(ServedByHeader, out var values) == true ? string.Join(',', values) : null;
                return socket;
            },
        });
        watcher.Client.StateChanged += watcher.OnStateChanged;
        try
        {
            await watcher.Client.StartAsync();
            watcher.Session = await watcher.Client.WatchAsync(sessionId, new WatchOptions { PositionOnly = true, Updated = watcher.OnUpdate });
        }
        catch
        {
            await watcher.Client.DisposeAsync();
            throw;
        }

        return watcher;
    }

    /// <summary>
    /// Opens <paramref name="n"/> watchers, 50 at a time; <paramref name="target"/> gives each its hub, session and node.
    /// </summary>
    public static async Task<List<MeasuredWatcher>> StartManyAsync(int n, Func<int, (Uri Hub, string SessionId, int Node)> target, bool reconnect)
    {
        var result = new MeasuredWatcher[n];
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = 50 }, async (i, _) =>
        {
            var (hub, sessionId, node) = target(i);
            result[i] = await StartAsync(hub, sessionId, node, reconnect);
        });
        return [.. result];
    }

    public static async Task DisposeAllAsync(IEnumerable<MeasuredWatcher> watchers) =>
        await Parallel.ForEachAsync(watchers, new ParallelOptions { MaxDegreeOfParallelism = 50 }, async (w, _) => await w.DisposeAsync());

    /// <summary>
    /// Sends the latency of what it applies from now on to <paramref name="sinks"/>, unless its connection dropped at or
    /// after <paramref name="notDroppedSinceUs"/> (checked under its lock, so a drop cannot slip in between).
    /// </summary>
    public void MeasureInto(IReadOnlyList<Histogram> sinks, long notDroppedSinceUs = long.MaxValue)
    {
        lock (_gate)
        {
            if (DisconnectedUs is not { } dropped || dropped < notDroppedSinceUs)
            {
                LatencySinks = sinks;
            }
        }
    }

    /// <summary>
    /// Keeps the latency of every text delta it applies from now until <see cref="EndRecording"/>, whatever happens to
    /// the connection meanwhile: which watchers' samples count is decided afterwards.
    /// </summary>
    public void BeginRecording()
    {
        lock (_gate)
        {
            _recorded = [];
        }
    }

    public List<double> EndRecording()
    {
        lock (_gate)
        {
            var recorded = _recorded ?? [];
            _recorded = null;
            return recorded;
        }
    }

    /// <summary>From now on, note the first text delta emitted after <paramref name="us"/> and the first pushed snapshot.</summary>
    public void Mark(long us)
    {
        lock (_gate)
        {
            (_markUs, FirstEventAfterMarkUs, SnapshotAfterMarkUs) = (us, null, null);
        }
    }

    public T Read<T>(Func<T> read)
    {
        lock (_gate)
        {
            return read();
        }
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();

    private static long Micros(long timestamp) => (long)(timestamp * (1_000_000.0 / Stopwatch.Frequency));

    private void OnStateChanged(object? sender, GatewayConnectionState state)
    {
        var now = FakeUpstream.NowMicros;
        lock (_gate)
        {
            switch (state)
            {
                case GatewayConnectionState.Reconnecting:
                    DisconnectedUs = now;
                    (ReconnectedUs, RejoinedUs, RejoinRecovered, LiveAgainUs) = (null, null, null, null);
                    _awaitingLive = true;
                    LatencySinks = [];
                    break;
                case GatewayConnectionState.Disconnected when _connectedOnce:
                    DisconnectedUs ??= now;
                    LatencySinks = [];
                    break;
                case GatewayConnectionState.Connected when _connectedOnce:
                    Reconnects++;
                    ReconnectedUs = now;
                    break;
                case GatewayConnectionState.Connected:
                    _connectedOnce = true;
                    break;
            }
        }
    }

    /// <summary>Every update the package reports, in order (the client's system clock is the stopwatch's: arrival times in µs).</summary>
    private void OnUpdate(object? sender, SessionUpdate update)
    {
        var receivedUs = Micros(update.ReceivedAt);
        lock (_gate)
        {
            switch (update.Kind)
            {
                case SessionUpdateKind.Snapshot when update.JoinResult is null:
                    PushedSnapshots++;
                    if (_markUs is not null)
                    {
                        SnapshotAfterMarkUs ??= receivedUs;
                    }

                    break;
                case SessionUpdateKind.Snapshot or SessionUpdateKind.Recovered:
                    var recovered = update.Kind == SessionUpdateKind.Recovered;
                    if (recovered)
                    {
                        Recoveries++;
                    }
                    else
                    {
                        Snapshots++;
                    }

                    if (_awaitingLive && RejoinedUs is null)
                    {
                        (RejoinedUs, RejoinRecovered) = (receivedUs, recovered);
                    }

                    _joinedUs = receivedUs;
                    break;
                case SessionUpdateKind.Event:
                    OnApplied(update.Event!, receivedUs);
                    break;
                case SessionUpdateKind.Duplicate:
                    Duplicates++;
                    break;
                case SessionUpdateKind.Rejoin when update.RejoinReason == RejoinReason.Epoch:
                    // Its snapshot is pushed before any event of a new epoch; the package rejoins in case it was lost.
                    EventsOfNewerEpochBeforeItsSnapshot++;
                    break;
                case SessionUpdateKind.Rejoin when update.RejoinReason == RejoinReason.Gap:
                    Gaps++;
                    if (GapLog.Count < 5)
                    {
                        GapLog.Add($"seq {update.Event?.Seq} after {update.Previous.Seq} (epoch {update.Previous.Epoch}) from {ServedBy ?? $"node {Node}"}, "
                            + $"{(receivedUs - _joinedUs) / 1000.0:0.0} ms after the latest join's result");
                    }

                    break;
                case SessionUpdateKind.JoinFailed:
                    Failures.Add($"rejoin failed: {update.View.JoinError?.Code}: {update.View.JoinError?.Message}");
                    break;
            }
        }
    }

    private void OnApplied(SessionEvent evt, long receivedUs)
    {
        Applied++;
        if (_awaitingLive && RejoinedUs is not null)
        {
            LiveAgainUs = receivedUs;
            _awaitingLive = false;
        }

        if (evt.Type == SessionEventTypes.PartDelta && long.TryParse(evt.Delta.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var emittedUs))
        {
            foreach (var sink in LatencySinks)
            {
                sink.Add(receivedUs - emittedUs);
            }

            _recorded?.Add(receivedUs - emittedUs);
            if (_markUs is { } mark && emittedUs > mark)
            {
                FirstEventAfterMarkUs ??= receivedUs;
            }
        }
    }
}
