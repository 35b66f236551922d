using System.Text.Json;
using OpencodeGateway.Client;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>
/// One session watched the way an app watches it, through the Gateway.Client package (its own <see cref="GatewayClient"/>
/// and <see cref="GatewaySession"/>, any event form and protocol), with the checks of <see cref="SessionRecorder"/> at
/// every update. The rules themselves are the package's.
/// </summary>
public sealed class ObservedSession : SessionRecorder, IAsyncDisposable
{
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ObservedWebSocket? _socket;
    private bool _connected;

    private ObservedSession(string sessionId) => SessionId = sessionId;

    public string SessionId { get; }

    public GatewayClient Client { get; private set; } = null!;

    public GatewaySession Session { get; private set; } = null!;

    /// <summary>The connection's socket, when connected with <see cref="GatewayHubClientOptions.ObserveWebSocket"/>.</summary>
    public ObservedWebSocket Socket => _socket ?? throw new InvalidOperationException(
        "Connect with GatewayHubClientOptions.ObserveWebSocket = true to count bytes or pause reading.");

    /// <summary>Completes when the connection went down without coming back by itself.</summary>
    public Task Closed => _closed.Task;

    public bool IsClosed => _closed.Task.IsCompleted;

    /// <summary>Times the connection came back by itself.</summary>
    public int Reconnects { get; private set; }

    /// <summary>
    /// Events (<see cref="SessionEvent"/>) and compact deltas (<see cref="CompactDelta"/>) for which this returns true are
    /// dropped as they arrive, as if lost on the way: what follows them must show the hole.
    /// </summary>
    public Func<object, bool>? LoseOnTheWay { get; set; }

    /// <summary>
    /// Connects (as alice unless <paramref name="options"/> say otherwise) and watches the session; with
    /// <paramref name="resumeFrom"/>, a view of an earlier connection, it rejoins with <c>since</c>.
    /// </summary>
    public static async Task<ObservedSession> StartAsync(Uri hubUrl, string sessionId, SessionView? resumeFrom = null,
        GatewayHubClientOptions? options = null, CancellationToken ct = default)
    {
        var observed = new ObservedSession(sessionId);
        var clientOptions = (options ?? GatewayHost.As()).ToClientOptions(hubUrl, socket => observed._socket = socket);
        observed.Client = new GatewayClient(clientOptions,
            events => new SignalRTransport(GatewayHubConnection.Create(clientOptions), new LossyEvents(events, observed)), null);
        observed.Client.StateChanged += observed.OnStateChanged;
        try
        {
            await observed.Client.StartAsync(ct);
            observed.Session = await observed.Client.WatchAsync(sessionId, new WatchOptions { ResumeFrom = resumeFrom, Updated = observed.OnUpdate }, ct);
            return observed;
        }
        catch
        {
            await observed.Client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until <paramref name="condition"/> holds (checked under this observer's lock).</summary>
    public Task WaitUntilAsync(Func<ObservedSession, bool> condition, TimeSpan timeout, string what) =>
        Eventually.HoldsAsync(() =>
        {
            if (Read(condition))
            {
                return true;
            }

            return IsClosed ? throw new InvalidOperationException($"{what}: the connection closed ({Describe()})") : false;
        }, what, timeout, Describe);

    public T Read<T>(Func<ObservedSession, T> read)
    {
        lock (Gate)
        {
            return read(this);
        }
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();

    private string Describe()
    {
        var view = View;
        lock (Gate)
        {
            return $"status {view.StatusType}, epoch {view.Epoch}, seq {view.Seq}, {AllText().Length} chars of text, events applied {EventsApplied}, "
                + $"snapshots {Snapshots} (pushed {PushedSnapshots}), recoveries {Recoveries}, reconnects {Reconnects}, compact deltas ignored "
                + $"{CompactIgnored}, join error {view.JoinError?.Code ?? "none"}, failures: {string.Join("; ", Failures)}";
        }
    }

    private void OnStateChanged(object? sender, GatewayConnectionState state)
    {
        lock (Gate)
        {
            if (state == GatewayConnectionState.Connected)
            {
                Reconnects += _connected ? 1 : 0;
                _connected = true;
            }
            else if (state == GatewayConnectionState.Disconnected && _connected)
            {
                _closed.TrySetResult();
            }
        }
    }

    /// <summary>The transport's messages on their way to the client, with the ones <see cref="LoseOnTheWay"/> picks dropped.</summary>
    private sealed class LossyEvents(IGatewayTransportEvents client, ObservedSession observed) : IGatewayTransportEvents
    {
        public void OnSessionEvent(SessionEvent evt)
        {
            if (observed.LoseOnTheWay?.Invoke(evt) != true)
            {
                client.OnSessionEvent(evt);
            }
        }

        public void OnDelta(CompactDelta delta)
        {
            if (observed.LoseOnTheWay?.Invoke(delta) != true)
            {
                client.OnDelta(delta);
            }
        }

        public void OnSessionSnapshot(SessionSnapshot snapshot) => client.OnSessionSnapshot(snapshot);

        public void OnSessionListChanged(SessionListChange change) => client.OnSessionListChanged(change);

        public void OnReconnecting(Exception? error) => client.OnReconnecting(error);

        public void OnReconnected() => client.OnReconnected();

        public void OnClosed(Exception? error) => client.OnClosed(error);
    }
}
