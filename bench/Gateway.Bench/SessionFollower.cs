using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Bench;

/// <summary>
/// One official SignalR client (WebSockets, no negotiate) watching one session the way the client rules require, but
/// keeping only its position (epoch, seq), not the text: join (with <c>since</c> after a drop), buffer what arrives
/// before the join's result, rejoin on a gap (with since) or on an event of a newer epoch (without), take pushed
/// snapshots of a newer position. Every text delta it applies goes to <see cref="LatencySinks"/> as receive time − the
/// fake upstream's emit time carried in the delta. It records when it was cut off, back, rejoined and live again.
/// </summary>
/// <remarks>
/// Connects with <c>?events=full</c>: every event as a <see cref="SessionEvent"/> in both arms of a comparison (a
/// gateway that does not know the parameter ignores it).
/// </remarks>
internal sealed class SessionFollower : IAsyncDisposable
{
    /// <summary>The hub URL's query parameter that picks the event form (<c>EventForms.QueryParameter</c> where it exists).</summary>
    private const string EventFormsQuery = "events";

    /// <summary>The header cluster.sh's nginx adds to every response: which node answered.</summary>
    private const string ServedByHeader = "X-Gateway-Upstream";

    private readonly Lock _gate = new();
    private readonly List<(SessionEvent Event, long ReceivedUs)> _buffer = [];
    private long _epoch;
    private long _seq;
    private bool _joining;
    private int _rejoinPending;
    private bool _awaitingLive;
    private long _joinedUs;
    private long? _markUs;
    private List<double>? _recorded;

    private SessionFollower(GatewayHubClient client, string sessionId, int node)
    {
        Client = client;
        SessionId = sessionId;
        Node = node;
    }

    public GatewayHubClient Client { get; }
    public string SessionId { get; }

    /// <summary>The node it connected to (1-based), 0 when behind the load balancer or on a single node.</summary>
    public int Node { get; }

    /// <summary>Behind cluster.sh's nginx: the address of the node serving its current connection (nginx's <see cref="ServedByHeader"/>).</summary>
    public string? ServedBy { get; private set; }

    /// <summary>The first gaps it saw (at most 5): when, where, and how long after its latest join's result.</summary>
    public List<string> GapLog { get; } = [];

    /// <summary>Where the latency of each applied text delta goes (µs); see <see cref="MeasureInto"/>.</summary>
    public IReadOnlyList<Histogram> LatencySinks { get; private set; } = [];

    public (long Epoch, long Seq) Position => Read(() => (_epoch, _seq));
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

    public static async Task<SessionFollower> StartAsync(Uri hubUrl, string sessionId, int node, bool reconnect)
    {
        var url = new UriBuilder(hubUrl) { Query = $"{EventFormsQuery}=full" }.Uri;
        SessionFollower? follower = null;
        string? firstServedBy = null;
        var options = new GatewayHubClientOptions
        {
            ApiKey = GatewayProcess.ApiKey, RecordEvents = false, SkipNegotiation = true, AutomaticReconnect = reconnect,
            HandshakeTimeout = TimeSpan.FromSeconds(60),
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

                var servedBy = socket.HttpResponseHeaders?.TryGetValue(ServedByHeader, out var values) == true ? string.Join(',', values) : null;
                if (follower is null)
                {
                    firstServedBy = servedBy;
                }
                else
                {
                    follower.ServedBy = servedBy;
                }

                return socket;
            },
        };
        var client = await GatewayHubClient.ConnectAsync(url, options);
        follower = new SessionFollower(client, sessionId, node) { ServedBy = firstServedBy };
        client.Connection.On<SessionEvent>(nameof(ISessionClient.SessionEvent), follower.OnEvent);
        client.OnSessionSnapshot(follower.OnSnapshot);
        client.Connection.Reconnecting += _ =>
        {
            lock (follower._gate)
            {
                follower.DisconnectedUs = FakeUpstream.NowMicros;
                (follower.ReconnectedUs, follower.RejoinedUs, follower.RejoinRecovered, follower.LiveAgainUs) = (null, null, null, null);
                follower._awaitingLive = true;
                follower.LatencySinks = [];
            }

            return Task.CompletedTask;
        };
        client.Connection.Closed += _ =>
        {
            lock (follower._gate)
            {
                follower.DisconnectedUs ??= FakeUpstream.NowMicros;
                follower.LatencySinks = [];
            }

            return Task.CompletedTask;
        };
        client.Connection.Reconnected += _ =>
        {
            lock (follower._gate)
            {
                follower.Reconnects++;
                follower.ReconnectedUs = FakeUpstream.NowMicros;
            }

            follower.Rejoin(useSince: true);
            return Task.CompletedTask;
        };
        try
        {
            await follower.JoinAsync(useSince: false);
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }

        return follower;
    }

    /// <summary>
    /// Opens <paramref name="n"/> followers, 50 at a time; <paramref name="target"/> gives each its hub, session and node.
    /// </summary>
    public static async Task<List<SessionFollower>> StartManyAsync(int n, Func<int, (Uri Hub, string SessionId, int Node)> target, bool reconnect)
    {
        var result = new SessionFollower[n];
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = 50 }, async (i, _) =>
        {
            var (hub, sessionId, node) = target(i);
            result[i] = await StartAsync(hub, sessionId, node, reconnect);
        });
        return [.. result];
    }

    public static async Task DisposeAllAsync(IEnumerable<SessionFollower> followers) =>
        await ScenarioB.DisposeAllAsync(followers.Select(f => f.Client));

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
    /// the connection meanwhile: which followers' samples count is decided afterwards.
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

    private async Task JoinAsync(bool useSince)
    {
        StreamPosition? since;
        lock (_gate)
        {
            _joining = true;
            since = useSince ? new StreamPosition(_epoch, _seq) : null;
        }

        JsonElement result;
        try
        {
            result = await Client.JoinAsync(new JoinRequest(SessionId, Since: since));
        }
        catch
        {
            lock (_gate)
            {
                _joining = false;
                _buffer.Clear();
            }

            throw;
        }

        var now = FakeUpstream.NowMicros;
        lock (_gate)
        {
            var recovered = result.GetProperty("recovered").GetBoolean();
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
                (RejoinedUs, RejoinRecovered) = (now, recovered);
            }

            _joinedUs = now;
            // A snapshot pushed while the join ran may be newer than the join's result: keep the newer position.
            MoveTo(result.GetProperty("epoch").GetInt64(), result.GetProperty("seq").GetInt64());
            _joining = false;
            var buffered = _buffer.ToList();
            _buffer.Clear();
            foreach (var (evt, receivedUs) in buffered)
            {
                if (_joining)
                {
                    _buffer.Add((evt, receivedUs));
                }
                else
                {
                    ApplyLocked(evt, receivedUs);
                }
            }
        }
    }

    private void MoveTo(long epoch, long seq)
    {
        if (epoch > _epoch || (epoch == _epoch && seq > _seq))
        {
            (_epoch, _seq) = (epoch, seq);
        }
    }

    private void OnEvent(SessionEvent evt)
    {
        var now = FakeUpstream.NowMicros;
        lock (_gate)
        {
            if (_joining)
            {
                _buffer.Add((evt, now));
                return;
            }

            ApplyLocked(evt, now);
        }
    }

    private void OnSnapshot(JsonElement snapshot)
    {
        var now = FakeUpstream.NowMicros;
        lock (_gate)
        {
            var (epoch, seq) = (snapshot.GetProperty("epoch").GetInt64(), snapshot.GetProperty("seq").GetInt64());
            if (epoch > _epoch || (epoch == _epoch && seq > _seq))
            {
                MoveTo(epoch, seq);
                PushedSnapshots++;
                if (_markUs is not null)
                {
                    SnapshotAfterMarkUs ??= now;
                }
            }
        }
    }

    private void ApplyLocked(SessionEvent evt, long receivedUs)
    {
        if (evt.Epoch < _epoch || (evt.Epoch == _epoch && evt.Seq <= _seq))
        {
            Duplicates++;
            return;
        }

        if (evt.Epoch > _epoch)
        {
            // Its snapshot is pushed before any event of a new epoch; rejoin in case it was lost.
            EventsOfNewerEpochBeforeItsSnapshot++;
            Rejoin(useSince: false);
            return;
        }

        if (evt.Seq != _seq + 1)
        {
            Gaps++;
            if (GapLog.Count < 5)
            {
                GapLog.Add($"seq {evt.Seq} after {_seq} (epoch {_epoch}) from {ServedBy ?? $"node {Node}"}, {(receivedUs - _joinedUs) / 1000.0:0.0} ms after the latest join's result");
            }

            Rejoin(useSince: true);
            return;
        }

        _seq = evt.Seq;
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

    private void Rejoin(bool useSince)
    {
        if (Interlocked.Exchange(ref _rejoinPending, 1) == 1)
        {
            return;
        }

        lock (_gate)
        {
            _joining = true;
        }

        _ = Task.Run(async () =>
        {
            // As an app's client does: a rejoin that fails for a passing reason (a node starting or stopping, Redis
            // back in a moment, the connection between two tries) is tried again; one failing for 30 s is a failure.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            try
            {
                while (true)
                {
                    try
                    {
                        await JoinAsync(useSince);
                        return;
                    }
                    catch (Exception e) when (DateTime.UtcNow < deadline && (e is not HubException hub || hub.GatewayCode() is "upstream_unavailable" or "internal_error"))
                    {
                        lock (_gate)
                        {
                            _joining = true;
                        }

                        await Task.Delay(250);
                    }
                    catch (Exception e)
                    {
                        lock (_gate)
                        {
                            Failures.Add($"rejoin failed: {e.Message}");
                        }

                        return;
                    }
                }
            }
            finally
            {
                Interlocked.Exchange(ref _rejoinPending, 0);
            }
        });
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();
}
