using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Streaming;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Sessions.Store;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Fanout.Internal;

namespace OpencodeGateway.Fanout;

/// <summary>
/// Applies normalised upstream events to live session state and fans them out to the session's group. With
/// <see cref="StreamingOptions.CoalesceWindow"/> &gt; 0, consecutive text deltas of the same part within the window
/// become one delta (first offset, concatenated text) before they are applied, so seq, offsets, replay and snapshots
/// all see the merged event and the client rules hold unchanged.
/// </summary>
internal sealed class SessionEventDispatcher : IUpstreamEventSink, IDisposable
{
    private readonly LiveSessionRegistry registry;
    private readonly SnapshotBuilder snapshots;
    private readonly UpstreamRegistry upstreams;
    private readonly ISessionBroadcaster broadcaster;
    private readonly SessionSubscriptions subscriptions;
    private readonly GatewayMetrics metrics;
    private readonly ISessionStore store;
    private readonly ILogger<SessionEventDispatcher> logger;
    private readonly TimeSpan _window;
    // Deltas held back, one per session at most; guarded by _pendingLock (taken before any session lock).
    private readonly Dictionary<(string Upstream, string SessionId), PendingDelta> _pending = [];
    private readonly Lock _pendingLock = new();
    private readonly ITimer? _timer;
    private bool _timerArmed;

    public SessionEventDispatcher(LiveSessionRegistry registry, SnapshotBuilder snapshots, UpstreamRegistry upstreams,
        ISessionBroadcaster broadcaster, SessionSubscriptions subscriptions, GatewayMetrics metrics,
        ISessionStore store, ILogger<SessionEventDispatcher> logger, IOptions<StreamingOptions> options, TimeProvider time)
    {
        this.registry = registry;
        this.snapshots = snapshots;
        this.upstreams = upstreams;
        this.broadcaster = broadcaster;
        this.subscriptions = subscriptions;
        this.metrics = metrics;
        this.store = store;
        this.logger = logger;
        _window = options.Value.CoalesceWindow;
        if (_window > TimeSpan.Zero)
        {
            _timer = time.CreateTimer(static state => ((SessionEventDispatcher)state!).FlushPending(), this,
                Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    public void OnEvent(string upstream, UpstreamEvent e)
    {
        if (_timer is null)
        {
            DispatchNow(upstream, e);
            return;
        }

        lock (_pendingLock)
        {
            var key = (upstream, e.SessionId!);
            if (_pending.TryGetValue(key, out var pending))
            {
                if (pending.TryAppend(e))
                {
                    return;
                }

                // Anything else of the session (or another part) goes after the held text: flush it first, in order.
                _pending.Remove(key);
                DispatchNow(upstream, pending.ToEvent());
            }

            if (e.Kind == UpstreamEventKind.PartDelta)
            {
                _pending[key] = new PendingDelta(e);
                if (!_timerArmed)
                {
                    _timerArmed = true;
                    _timer.Change(_window, Timeout.InfiniteTimeSpan);
                }

                return;
            }

            DispatchNow(upstream, e);
        }
    }

    public void Dispose() => _timer?.Dispose();

    /// <summary>Sends every held delta (the window elapsed, or the stream is about to be reset).</summary>
    public void FlushPending()
    {
        if (_timer is null)
        {
            return;
        }

        lock (_pendingLock)
        {
            _timerArmed = false;
            foreach (var ((upstream, _), pending) in _pending)
            {
                DispatchNow(upstream, pending.ToEvent());
            }

            _pending.Clear();
        }
    }

    private void DispatchNow(string upstream, UpstreamEvent e)
    {
        var (evt, group) = registry.Use(upstream, e.SessionId!, session =>
        {
            var applied = session.Apply(e);
            // Filter before any fan-out work: nobody on this node watches the session.
            return (applied, session.Watchers > 0 ? session.GroupName : null);
        });

        if (evt is not null && group is not null)
        {
            // The outbox lifetime manager only enqueues: this never waits on a client.
            broadcaster.SendEvent(group, evt);
            subscriptions.Publish(group, evt);
            metrics.EventSent();
        }
    }

    /// <summary>The stream came back after a gap: watched sessions get a new epoch and a fresh snapshot.</summary>
    public void OnStreamConnected(string upstream)
    {
        // Held deltas belong to the epoch that is ending.
        FlushPending();
        var watched = registry.ResetUpstream(upstream);
        if (watched.Count == 0)
        {
            return;
        }

        FanoutLog.Resynchronising(logger, upstream, watched.Count);
        var client = upstreams.Get(upstream);
        foreach (var session in watched)
        {
            _ = PushSnapshotAsync(client, session.SessionId, session.GroupName);
        }
    }

    private async Task PushSnapshotAsync(OpencodeClient client, string sessionId, string group)
    {
        try
        {
            SessionMetadata? metadata = null;
            try
            {
                metadata = (await store.GetAsync(sessionId, CancellationToken.None))?.ToContract();
            }
            catch (System.Data.Common.DbException e)
            {
                FanoutLog.ResyncFailed(logger, sessionId, "session store: " + e.Message);
            }

            var snapshot = await snapshots.BuildAsync(client, sessionId, metadata, CancellationToken.None);
            broadcaster.SendSnapshot(group, snapshot);
            subscriptions.Publish(group, snapshot);
        }
        catch (GatewayException e)
        {
            FanoutLog.ResyncFailed(logger, sessionId, e.Message);
        }
    }

    /// <summary>Text deltas of one part held back within the coalescing window.</summary>
    private sealed class PendingDelta(UpstreamEvent first)
    {
        private StringBuilder? _text;
        private int _size = first.Size;

        public bool TryAppend(UpstreamEvent e)
        {
            if (e.Kind != UpstreamEventKind.PartDelta || e.PartId != first.PartId || e.MessageId != first.MessageId
                || e.Field != first.Field)
            {
                return false;
            }

            (_text ??= new StringBuilder(first.Delta)).Append(e.Delta);
            _size += e.Size;
            return true;
        }

        public UpstreamEvent ToEvent() => _text is null
            ? first
            : new UpstreamEvent
            {
                Kind = UpstreamEventKind.PartDelta, Type = first.Type, Size = _size, SessionId = first.SessionId,
                MessageId = first.MessageId, PartId = first.PartId, Field = first.Field, Delta = _text.ToString(),
            };
    }
}
