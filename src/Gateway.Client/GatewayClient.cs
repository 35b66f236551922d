using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>
/// A client of the gateway's session hub on the official SignalR client: one connection that comes back by itself,
/// sessions watched by the client rules (joined once however many watchers; rejoined with <c>since</c> after every
/// reconnect, gap or new epoch), and the hub's calls with the contract's types. Failed calls throw
/// <see cref="GatewayException"/>. Thread-safe.
/// </summary>
public sealed class GatewayClient : IAsyncDisposable, IGatewayTransportEvents
{
    private readonly Lock _gate = new();
    private readonly GatewayClientOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IGatewayTransport _transport;
    private readonly Dictionary<string, WatchedSession> _sessions = new(StringComparer.Ordinal);
    // Watched sessions by the s of their compact deltas on the current connection.
    private readonly Dictionary<int, WatchedSession> _byHandle = [];
    private readonly CancellationTokenSource _lifetime = new();
    private TaskCompletionSource _connectedSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private GatewayConnectionState _state = GatewayConnectionState.Disconnected;
    private bool _connected;
    private bool _started;
    private bool _disposed;
    private int _reconnectLoop;

    /// <summary>A client of the hub <paramref name="options"/> name; call <see cref="StartAsync"/> to connect.</summary>
    public GatewayClient(GatewayClientOptions options, ILoggerFactory? loggerFactory = null)
        : this(options, events => new SignalRTransport(GatewayHubConnection.Create(options, loggerFactory), events), loggerFactory)
    {
    }

    internal GatewayClient(GatewayClientOptions options, Func<IGatewayTransportEvents, IGatewayTransport> transport, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = options.TimeProvider;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<GatewayClient>();
        _transport = transport(this);
    }

    public GatewayConnectionState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>The connection's state changed (raised on the thread that changed it).</summary>
    public event EventHandler<GatewayConnectionState>? StateChanged;

    /// <summary>
    /// A session the caller may see was created, changed or archived, by any tab, on any node. Changes made while the
    /// client was disconnected are not replayed: list again after a reconnect (<see cref="GatewaySessionList"/> does).
    /// </summary>
    public event EventHandler<SessionListChange>? SessionListChanged;

    /// <summary>
    /// Connects. Throws when the first connection cannot be made; once connected, the client reconnects by itself
    /// (<see cref="GatewayClientOptions.AutomaticReconnect"/>) and every watched session rejoins from where it was. After
    /// <see cref="StopAsync"/>, starting again rejoins the sessions still watched.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state is GatewayConnectionState.Connected or GatewayConnectionState.Connecting)
            {
                return;
            }

            _started = true;
        }

        SetState(GatewayConnectionState.Connecting);
        try
        {
            await _transport.StartAsync(cancellationToken);
        }
        catch
        {
            SetState(GatewayConnectionState.Disconnected);
            throw;
        }

        OnConnected();
    }

    /// <summary>Disconnects. Watched sessions keep their views; <see cref="StartAsync"/> rejoins them with <c>since</c>.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _started = false;
            MarkDisconnected();
            foreach (var session in _sessions.Values)
            {
                CancelRetry(session);
            }
        }

        await _transport.StopAsync(cancellationToken);
        SetState(GatewayConnectionState.Disconnected);
    }

    /// <summary>
    /// Watches a session: joins it (or shares the join of a session watched already) and completes once the first
    /// join's result is applied. From then on the view follows the session through reconnects, gaps and new epochs until
    /// the returned session is disposed. Throws <see cref="GatewayException"/> when the first join fails
    /// (<c>session_not_found</c>, …).
    /// </summary>
    public async Task<GatewaySession> WatchAsync(string sessionId, WatchOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        options ??= new WatchOptions();
        if (options.ResumeFrom is { } resume && resume.SessionId != sessionId)
        {
            throw new ArgumentException($"ResumeFrom is a view of {resume.SessionId}, not of {sessionId}.", nameof(options));
        }

        await WaitConnectedAsync(cancellationToken);
        GatewaySession watcher;
        var batch = new Batch();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_sessions.TryGetValue(sessionId, out var watched))
            {
                watched = new WatchedSession(sessionId, options, _logger);
                _sessions[sessionId] = watched;
                Join(watched, watched.State.BeginJoin(), batch);
            }
            else if (watched.PositionOnly != options.PositionOnly)
            {
                throw new InvalidOperationException($"Session {sessionId} is watched already with PositionOnly = {watched.PositionOnly}.");
            }

            watcher = new GatewaySession(this, watched, options);
            watched.Add(watcher);
        }

        Run(batch);
        try
        {
            await watcher.Watched.FirstJoin.Task.WaitAsync(cancellationToken);
            return watcher;
        }
        catch (OperationCanceledException)
        {
            // Given up on, the join may still succeed: leave it then.
            await ReleaseAsync(watcher, leave: true);
            throw;
        }
    }

    /// <summary>Creates a session owned by the caller; returns opencode's session info (<c>id</c>, <c>title</c>, …).</summary>
    public Task<JsonElement> CreateSessionAsync(CreateSessionRequest? request = null, CancellationToken cancellationToken = default) =>
        CallAsync<JsonElement>("CreateSession", [request ?? new CreateSessionRequest()], cancellationToken);

    /// <summary>One page of the caller's sessions, most recently updated first.</summary>
    public Task<SessionList> ListSessionsAsync(ListSessionsRequest? request = null, CancellationToken cancellationToken = default) =>
        CallAsync<SessionList>("ListSessions", [request ?? new ListSessionsRequest()], cancellationToken);

    /// <summary>Keeps a list of the caller's sessions current (<see cref="GatewaySessionList"/>); dispose it to stop.</summary>
    public async Task<GatewaySessionList> WatchSessionListAsync(ListSessionsRequest? filter = null, SynchronizationContext? synchronizationContext = null,
        CancellationToken cancellationToken = default)
    {
        var list = new GatewaySessionList(this, filter ?? new ListSessionsRequest(), synchronizationContext, _logger);
        try
        {
            await list.RefreshAsync(cancellationToken);
        }
        catch
        {
            list.Dispose();
            throw;
        }

        return list;
    }

    /// <summary>Changes the gateway's title, tags or metadata of a session (a watched session's view takes the result).</summary>
    public async Task<SessionMetadata> UpdateMetadataAsync(UpdateSessionRequest request, CancellationToken cancellationToken = default)
    {
        var metadata = await CallAsync<SessionMetadata>("UpdateMetadata", [request], cancellationToken);
        WatchedSession? watched;
        lock (_gate)
        {
            if (_sessions.TryGetValue(request.SessionId, out watched))
            {
                watched.State.SetMetadata(metadata, _time.GetTimestamp());
            }
        }

        watched?.FlushChanged();
        return metadata;
    }

    public Task<PromptResult> PromptAsync(PromptRequest request, CancellationToken cancellationToken = default) =>
        CallAsync<PromptResult>("Prompt", [request], cancellationToken);

    public Task<PromptResult> PromptAsync(string sessionId, string text, CancellationToken cancellationToken = default) =>
        PromptAsync(new PromptRequest(sessionId, text), cancellationToken);

    public Task AbortAsync(string sessionId, CancellationToken cancellationToken = default) =>
        CallAsync<object>("Abort", [sessionId], cancellationToken);

    public Task ReplyPermissionAsync(PermissionReplyRequest request, CancellationToken cancellationToken = default) =>
        CallAsync<object>("ReplyPermission", [request], cancellationToken);

    public Task ReplyQuestionAsync(QuestionReplyRequest request, CancellationToken cancellationToken = default) =>
        CallAsync<object>("ReplyQuestion", [request], cancellationToken);

    public Task RejectQuestionAsync(QuestionRejectRequest request, CancellationToken cancellationToken = default) =>
        CallAsync<object>("RejectQuestion", [request], cancellationToken);

    /// <summary>A page of the messages before a cursor, as opencode stored them (a watched session pages with <see cref="GatewaySession.LoadEarlierAsync"/>).</summary>
    public Task<MessagePage> LoadEarlierAsync(LoadEarlierRequest request, CancellationToken cancellationToken = default) =>
        CallAsync<MessagePage>("LoadEarlier", [request], cancellationToken);

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _started = false;
            _connected = false;
            foreach (var session in _sessions.Values)
            {
                session.Left = true;
                CancelRetry(session);
                session.FirstJoin.TrySetException(new ObjectDisposedException(nameof(GatewayClient)));
            }

            _sessions.Clear();
            _byHandle.Clear();
            _connectedSignal.TrySetException(new ObjectDisposedException(nameof(GatewayClient)));
        }

        await _lifetime.CancelAsync();
        await _transport.DisposeAsync();
        _lifetime.Dispose();
        SetState(GatewayConnectionState.Disconnected);
    }

    internal async Task<bool> LoadEarlierAsync(WatchedSession session, int? limit, CancellationToken cancellationToken)
    {
        Task<bool> load;
        lock (_gate)
        {
            if (session.Left || session.State.View.Earlier?.Cursor is not { } cursor)
            {
                return false;
            }

            if (session.EarlierLoad is { } inFlight && inFlight.Cursor == cursor)
            {
                load = inFlight.Load;
            }
            else
            {
                load = LoadPageAsync(session, cursor, limit, cancellationToken);
                session.EarlierLoad = (cursor, load);
            }
        }

        return await load;
    }

    private async Task<bool> LoadPageAsync(WatchedSession session, string cursor, int? limit, CancellationToken cancellationToken)
    {
        await Task.Yield(); // the caller registers this load before it runs
        try
        {
            var page = await LoadEarlierAsync(new LoadEarlierRequest(session.SessionId, cursor, limit), cancellationToken);
            bool added;
            lock (_gate)
            {
                added = !session.Left && session.State.ApplyEarlier(cursor, page, _time.GetTimestamp());
            }

            session.FlushChanged();
            return added;
        }
        finally
        {
            lock (_gate)
            {
                if (session.EarlierLoad?.Cursor == cursor)
                {
                    session.EarlierLoad = null;
                }
            }
        }
    }

    /// <summary>A watcher let go; the last one of a session forgets it (and with <paramref name="leave"/> leaves it).</summary>
    internal async Task ReleaseAsync(GatewaySession watcher, bool leave)
    {
        var session = watcher.Watched;
        lock (_gate)
        {
            if (session.Left || !session.Remove(watcher))
            {
                return;
            }

            Forget(session);
            leave &= _connected;
        }

        if (leave)
        {
            try
            {
                await _transport.InvokeAsync("Leave", typeof(object), [session.SessionId], CancellationToken.None);
            }
            catch (Exception e)
            {
                // Leaving is a courtesy: a connection that dropped has left every group already.
                ClientLog.LeaveFailed(_logger, session.SessionId, GatewayException.From(e).Code);
            }
        }
    }

    /// <summary>Stops following a session: nothing it receives from now on is applied. Under the lock.</summary>
    private void Forget(WatchedSession session)
    {
        session.Left = true;
        session.JoinGeneration++;
        CancelRetry(session);
        if (session.Handle is { } handle && _byHandle.GetValueOrDefault(handle) == session)
        {
            _byHandle.Remove(handle);
        }

        if (_sessions.GetValueOrDefault(session.SessionId) == session)
        {
            _sessions.Remove(session.SessionId);
        }
    }

    private async Task<T> CallAsync<T>(string method, object?[] args, CancellationToken cancellationToken)
    {
        await WaitConnectedAsync(cancellationToken);
        try
        {
            return (T)(await _transport.InvokeAsync(method, typeof(T), args, cancellationToken))!;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            throw GatewayException.From(e);
        }
    }

    /// <summary>Completes once connected; fails <see cref="GatewayException.Disconnected"/> when not within the connect timeout.</summary>
    private async Task WaitConnectedAsync(CancellationToken cancellationToken)
    {
        Task connected;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_connected)
            {
                return;
            }

            if (!_started)
            {
                throw new GatewayException(GatewayException.Disconnected, "The client is not started: call StartAsync first.");
            }

            connected = _connectedSignal.Task;
        }

        try
        {
            await connected.WaitAsync(_options.ConnectTimeout, _time, cancellationToken);
        }
        catch (TimeoutException e)
        {
            throw new GatewayException(GatewayException.Disconnected, $"Not connected to the gateway within {_options.ConnectTimeout.TotalSeconds:0.#} s.", e);
        }
    }

    private void SetState(GatewayConnectionState state)
    {
        lock (_gate)
        {
            if (_state == state)
            {
                return;
            }

            _state = state;
        }

        try
        {
            StateChanged?.Invoke(this, state);
        }
        catch (Exception e)
        {
            ClientLog.HandlerFailed(_logger, nameof(StateChanged), e);
        }
    }

    /// <summary>A new connection: it joined nothing, so every watched session joins again from where it is (rule 6).</summary>
    private void OnConnected()
    {
        var batch = new Batch();
        lock (_gate)
        {
            if (_disposed || !_started)
            {
                return;
            }

            _connected = true;
            _connectedSignal.TrySetResult();
            // Session handles belong to a connection: each rejoin's result names the new one.
            _byHandle.Clear();
            foreach (var session in _sessions.Values)
            {
                session.Handle = null;
                session.State.ForgetSessionHandle();
                CancelRetry(session);
                // Mid-join (e.g. asked for a snapshot after an epoch change): ask for the same again; else from the view.
                Join(session, session.State.IsJoining ? session.WantedSince : session.State.BeginJoin(), batch);
            }

            ClientLog.Connected(_logger, _sessions.Count);
        }

        SetState(GatewayConnectionState.Connected);
        Run(batch);
    }

    /// <summary>Calls wait for the next connection from now on. Under the lock.</summary>
    private void MarkDisconnected()
    {
        if (!_connected)
        {
            return;
        }

        _connected = false;
        _connectedSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    void IGatewayTransportEvents.OnReconnecting(Exception? error)
    {
        ClientLog.Reconnecting(_logger, error);
        lock (_gate)
        {
            MarkDisconnected();
        }

        SetState(GatewayConnectionState.Reconnecting);
    }

    void IGatewayTransportEvents.OnReconnected() => OnConnected();

    void IGatewayTransportEvents.OnClosed(Exception? error)
    {
        bool again;
        lock (_gate)
        {
            MarkDisconnected();
            again = _started && !_disposed && _options.AutomaticReconnect;
            if (!again)
            {
                // Stopped, or dropped without automatic reconnect: down until StartAsync.
                _started = false;
            }
        }

        if (!again)
        {
            SetState(GatewayConnectionState.Disconnected);
            return;
        }

        // Closed although automatic reconnect is on (the server said not to reconnect): connect again ourselves.
        if (Interlocked.Exchange(ref _reconnectLoop, 1) == 0)
        {
            _ = ConnectAgainAsync(error);
        }
    }

    private async Task ConnectAgainAsync(Exception? error)
    {
        try
        {
            SetState(GatewayConnectionState.Reconnecting);
            for (var attempt = 0; ; attempt++)
            {
                ClientLog.ConnectingAgain(_logger, attempt + 1, error);
                await Task.Delay(ReconnectPolicy.Delay(_options.ReconnectDelays, attempt), _time, _lifetime.Token);
                lock (_gate)
                {
                    if (!_started || _disposed)
                    {
                        return;
                    }
                }

                try
                {
                    await _transport.StartAsync(_lifetime.Token);
                }
                catch (Exception e) when (!_lifetime.IsCancellationRequested)
                {
                    error = e;
                    continue;
                }

                OnConnected();
                return;
            }
        }
        catch (OperationCanceledException) when (_lifetime.IsCancellationRequested)
        {
            // disposed
        }
        finally
        {
            Volatile.Write(ref _reconnectLoop, 0);
        }
    }

    void IGatewayTransportEvents.OnSessionEvent(SessionEvent evt)
    {
        var at = _time.GetTimestamp();
        var batch = new Batch();
        lock (_gate)
        {
            if (!_sessions.TryGetValue(evt.SessionId, out var session))
            {
                return;
            }

            HandleAction(session, session.State.ReceiveEvent(evt, at), batch);
            batch.Touched.Add(session);
        }

        Run(batch);
    }

    /// <summary>
    /// A compact delta: to the session its <c>s</c> names; before a join's result named it, to every session whose join
    /// is in flight (each buffers it and keeps only its own once its result arrives).
    /// </summary>
    void IGatewayTransportEvents.OnDelta(CompactDelta delta)
    {
        var at = _time.GetTimestamp();
        var batch = new Batch();
        lock (_gate)
        {
            if (_byHandle.TryGetValue(delta.S, out var owner))
            {
                HandleAction(owner, owner.State.ReceiveDelta(delta, at), batch);
                batch.Touched.Add(owner);
            }
            else
            {
                foreach (var session in _sessions.Values.Where(s => s.State.IsJoining).ToList())
                {
                    HandleAction(session, session.State.ReceiveDelta(delta, at), batch);
                    batch.Touched.Add(session);
                }
            }
        }

        Run(batch);
    }

    void IGatewayTransportEvents.OnSessionSnapshot(SessionSnapshot snapshot)
    {
        var at = _time.GetTimestamp();
        var batch = new Batch();
        lock (_gate)
        {
            if (!_sessions.TryGetValue(snapshot.SessionId, out var session))
            {
                return;
            }

            HandleAction(session, session.State.ReceiveSnapshot(snapshot, at), batch);
            batch.Touched.Add(session);
        }

        Run(batch);
    }

    void IGatewayTransportEvents.OnSessionListChanged(SessionListChange change)
    {
        try
        {
            SessionListChanged?.Invoke(this, change);
        }
        catch (Exception e)
        {
            ClientLog.HandlerFailed(_logger, nameof(SessionListChanged), e);
        }
    }

    /// <summary>Sends a join (the session buffers meanwhile); while disconnected the reconnect joins instead.</summary>
    private void Join(WatchedSession session, StreamPosition? since, Batch batch)
    {
        var generation = ++session.JoinGeneration;
        session.WantedSince = since;
        CancelRetry(session);
        if (_connected)
        {
            batch.Joins.Add((session, generation, since));
        }
    }

    private async Task SendJoinAsync(WatchedSession session, int generation, StreamPosition? since)
    {
        JoinResult result;
        try
        {
            result = (JoinResult)(await _transport.InvokeAsync("Join", typeof(JoinResult),
                [new JoinRequest(session.SessionId, session.Upstream, since)], _lifetime.Token))!;
        }
        catch (Exception e)
        {
            OnJoinFailed(session, generation, GatewayException.From(e));
            return;
        }

        var batch = new Batch();
        lock (_gate)
        {
            if (session.Left || generation != session.JoinGeneration)
            {
                return;
            }

            session.JoinFailures = 0;
            session.Upstream ??= result.Upstream;
            var action = session.State.CompleteJoin(result, _time.GetTimestamp());
            HandleAction(session, action, batch);
            batch.Touched.Add(session);
        }

        Run(batch);
        session.FirstJoin.TrySetResult();
    }

    private void OnJoinFailed(WatchedSession session, int generation, GatewayException error)
    {
        var batch = new Batch();
        lock (_gate)
        {
            if (session.Left || generation != session.JoinGeneration || _disposed)
            {
                return;
            }

            if (!session.FirstJoin.Task.IsCompleted && error.Code != GatewayException.Disconnected)
            {
                // The first join fails the WatchAsync that asked for it; a failed join joined nothing to leave.
                session.State.FailJoin(null, _time.GetTimestamp());
                Forget(session);
                session.FirstJoin.TrySetException(error);
                return;
            }

            if (!error.IsTransient)
            {
                ClientLog.JoinFailed(_logger, session.SessionId, error.Code, error);
                session.State.FailJoin(error, _time.GetTimestamp());
                batch.Touched.Add(session);
            }
            else if (_connected)
            {
                // The next join (from the position held) brings back whatever arrives meanwhile.
                session.State.FailJoin(null, _time.GetTimestamp());
                var delay = ReconnectPolicy.Delay(_options.ReconnectDelays, session.JoinFailures++);
                if (delay == TimeSpan.Zero)
                {
                    delay = TimeSpan.FromMilliseconds(250);
                }

                ClientLog.JoinRetry(_logger, session.SessionId, error.Code, delay, error);
                RetryLater(session, delay, () => session.State.BeginJoin(), requireIdle: true);
            }
            else
            {
                // Disconnected: buffer until the reconnect joins again.
                session.State.FailJoin(null, _time.GetTimestamp());
                session.State.BeginJoin();
            }
        }

        Run(batch);
    }

    /// <summary>Keeps the handle map in step with the session, then sends the rejoin the state asked for, if any.</summary>
    private void HandleAction(WatchedSession session, RejoinAction? action, Batch batch)
    {
        SyncHandle(session);
        if (action is not { } rejoin)
        {
            session.RejoinStreak = 0;
            return;
        }

        ClientLog.Rejoining(_logger, session.SessionId, rejoin.Reason, rejoin.Since is { } since ? $"{since.Epoch}/{since.Seq}" : "none");
        // A rejoin normally mends the view at once; one asked for again and again slows down rather than loops.
        var streak = session.RejoinStreak++;
        if (streak < 3)
        {
            Join(session, rejoin.Since, batch);
            return;
        }

        var generation = ++session.JoinGeneration;
        session.WantedSince = rejoin.Since;
        var delay = ReconnectPolicy.Delay(_options.ReconnectDelays, streak - 2);
        RetryLater(session, delay == TimeSpan.Zero ? TimeSpan.FromMilliseconds(250) : delay, () => rejoin.Since, requireIdle: false, generation);
    }

    /// <summary>Joins again after <paramref name="delay"/> (the session's clock), unless it left or joined meanwhile.</summary>
    private void RetryLater(WatchedSession session, TimeSpan delay, Func<StreamPosition?> since, bool requireIdle, int? generation = null)
    {
        CancelRetry(session);
        session.RetryTimer = _time.CreateTimer(_ =>
        {
            var batch = new Batch();
            lock (_gate)
            {
                if (session.Left || !_connected || (generation is { } g && g != session.JoinGeneration) || (requireIdle && session.State.IsJoining))
                {
                    return;
                }

                Join(session, since(), batch);
            }

            Run(batch);
        }, null, delay, Timeout.InfiniteTimeSpan);
    }

    private static void CancelRetry(WatchedSession session)
    {
        session.RetryTimer?.Dispose();
        session.RetryTimer = null;
    }

    /// <summary>Keeps <see cref="_byHandle"/> in step with the session's handle (a join result or pushed snapshot may change it).</summary>
    private void SyncHandle(WatchedSession session)
    {
        var handle = session.Left ? null : session.State.SessionHandle;
        if (handle == session.Handle)
        {
            return;
        }

        if (session.Handle is { } old && _byHandle.GetValueOrDefault(old) == session)
        {
            _byHandle.Remove(old);
        }

        session.Handle = handle;
        if (handle is { } h)
        {
            _byHandle[h] = session;
        }
    }

    /// <summary>What a locked section leaves to do once the lock is let go: joins to send, changes to announce.</summary>
    private void Run(Batch batch)
    {
        foreach (var (session, generation, since) in batch.Joins)
        {
            _ = SendJoinAsync(session, generation, since);
        }

        foreach (var session in batch.Touched)
        {
            session.FlushChanged();
        }
    }

    private sealed class Batch
    {
        public List<(WatchedSession Session, int Generation, StreamPosition? Since)> Joins { get; } = [];

        public HashSet<WatchedSession> Touched { get; } = [];
    }
}
