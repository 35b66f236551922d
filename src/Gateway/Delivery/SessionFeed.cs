using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery.Internal;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Store;

namespace OpencodeGateway.Delivery;

/// <summary>
/// Delivers one session's events to this node's watchers (its SignalR group and in-process subscriptions), each
/// exactly once and in seq order, whatever order they arrive in: a gap is repaired from the history before anything
/// after it is delivered, and a new epoch starts with a pushed snapshot of it, never with one of its events.
/// </summary>
/// <remarks>
/// Lock order: the history may call <see cref="Offer"/> under a session's lock; this class never calls the history
/// while holding its own lock.
/// </remarks>
internal sealed class SessionFeed
{
    private const int MaxPending = 4096;
    private static readonly TimeSpan RepairRetryDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan[] ResyncDelays = [TimeSpan.Zero, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)];

    private readonly object _gate = new();
    private readonly SessionKey _key;
    private readonly string _group;
    private readonly FeedContext _context;
    // Arrived but not deliverable yet: after a hole, or of an epoch being resynchronised. Keyed by (epoch, seq).
    private readonly SortedDictionary<(long Epoch, long Seq), SessionEvent> _pending = [];
    private List<SessionEvent>? _early = [];
    private long _epoch;
    private long _seq;
    private Mode _mode;
    private long _targetEpoch;

    public SessionFeed(SessionKey key, FeedContext context)
    {
        _key = key;
        _group = key.GroupName;
        _context = context;
    }

    private enum Mode
    {
        Live,
        Repairing,
        Resyncing,
    }

    /// <summary>The position of the last event delivered (or of the snapshot that started the epoch).</summary>
    public StreamPosition Position
    {
        get
        {
            lock (_gate)
            {
                return new StreamPosition(_epoch, _seq);
            }
        }
    }

    /// <summary>
    /// Starts delivering after <paramref name="head"/>, the session's position read after the feed began to receive
    /// its events; events that arrived before that are delivered now when they come after it.
    /// </summary>
    public void Start(StreamPosition head)
    {
        lock (_gate)
        {
            (_epoch, _seq) = (head.Epoch, head.Seq);
            var early = _early!;
            _early = null;
            foreach (var evt in early)
            {
                Handle(evt);
            }
        }
    }

    /// <summary>
    /// The session's latest position in the history: when it is past what this feed delivered (a published event was
    /// lost on the way), the feed repairs from the history; when it is of another epoch, it resynchronises.
    /// </summary>
    /// <param name="head">Null: the history holds no state of the session any more (it lost it): resynchronise.</param>
    public void OnHead(StreamPosition? head)
    {
        lock (_gate)
        {
            if (_early is not null || _mode != Mode.Live)
            {
                return;
            }

            if (head is null)
            {
                StartResync(_epoch);
            }
            else if (head.Epoch != _epoch)
            {
                StartResync(head.Epoch);
            }
            else if (head.Seq > _seq)
            {
                _mode = Mode.Repairing;
                _ = RepairAsync(_epoch, _seq, TimeSpan.Zero);
            }
        }
    }

    /// <summary>An event of the session, from any source, in any order, possibly twice.</summary>
    public void Offer(SessionEvent evt)
    {
        lock (_gate)
        {
            if (_early is not null)
            {
                _early.Add(evt);
                return;
            }

            Handle(evt);
        }
    }

    // Caller holds _gate.
    private void Handle(SessionEvent evt)
    {
        if (evt.Epoch < _epoch)
        {
            return;
        }

        if (_mode == Mode.Resyncing)
        {
            if (evt.Epoch > _targetEpoch)
            {
                StartResync(evt.Epoch);
            }

            // Events of the epoch being resynchronised wait for its snapshot; older ones are superseded by it.
            if (evt.Epoch == _targetEpoch)
            {
                Hold(evt);
            }

            return;
        }

        if (evt.Epoch > _epoch)
        {
            // Continuity was lost upstream: watchers get the new epoch's snapshot before any of its events.
            StartResync(evt.Epoch);
            Hold(evt);
            return;
        }

        if (evt.Seq <= _seq)
        {
            return;
        }

        if (evt.Seq == _seq + 1)
        {
            Deliver(evt);
            DeliverPending();
            return;
        }

        Hold(evt);
        if (_mode == Mode.Live)
        {
            _mode = Mode.Repairing;
            _ = RepairAsync(_epoch, _seq, TimeSpan.Zero);
        }
    }

    // Caller holds _gate.
    private void StartResync(long target)
    {
        _mode = Mode.Resyncing;
        _targetEpoch = target;
        _pending.Clear();
        _ = ResyncAsync(target);
    }

    private void Hold(SessionEvent evt)
    {
        if (_pending.Count >= MaxPending)
        {
            // Held back too long: what is held is in the history anyway.
            _pending.Clear();
        }

        _pending[(evt.Epoch, evt.Seq)] = evt;
    }

    // Caller holds _gate.
    private void Deliver(SessionEvent evt)
    {
        _seq = evt.Seq;
        _context.Broadcaster.SendEvent(_group, evt);
        _context.Subscriptions.Publish(_group, evt);
        _context.Metrics.EventSent();
    }

    // Caller holds _gate.
    private void DeliverPending()
    {
        while (_pending.Count > 0)
        {
            var (position, evt) = _pending.First();
            if (position.Epoch < _epoch || (position.Epoch == _epoch && position.Seq <= _seq))
            {
                _pending.Remove(position);
            }
            else if (position.Epoch == _epoch && position.Seq == _seq + 1)
            {
                _pending.Remove(position);
                Deliver(evt);
            }
            else
            {
                return;
            }
        }
    }

    private async Task RepairAsync(long epoch, long from, TimeSpan delay)
    {
        IReadOnlyList<SessionEvent>? missed;
        try
        {
            await Task.Yield(); // never on the caller's stack: it holds our lock
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _context.Time);
            }

            missed = await _context.History.ReadAfterAsync(_key, new StreamPosition(epoch, from), CancellationToken.None);
        }
        catch (Exception e)
        {
            DeliveryLog.RepairFailed(_context.Logger, _key.SessionId, e.Message);
            missed = null;
        }

        lock (_gate)
        {
            if (_mode != Mode.Repairing || _epoch != epoch)
            {
                return;
            }

            if (missed is null)
            {
                // The history no longer holds them: a snapshot of the current state replaces what watchers have.
                var held = _pending.Values.ToList();
                StartResync(epoch);
                foreach (var evt in held)
                {
                    Hold(evt);
                }

                return;
            }

            _mode = Mode.Live;
            foreach (var evt in missed)
            {
                if (evt.Epoch == _epoch && evt.Seq > _seq)
                {
                    _pending[(evt.Epoch, evt.Seq)] = evt;
                }
            }

            DeliverPending();
            if (_pending.Count > 0 && _pending.First().Key.Epoch == _epoch)
            {
                // Still a hole (what the history had ended before the held events): read again shortly.
                _mode = Mode.Repairing;
                _ = RepairAsync(_epoch, _seq, RepairRetryDelay);
            }
        }
    }

    private async Task ResyncAsync(long target)
    {
        await Task.Yield(); // never on the caller's stack: it holds our lock
        foreach (var delay in ResyncDelays)
        {
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _context.Time);
            }

            lock (_gate)
            {
                if (_mode != Mode.Resyncing || _targetEpoch != target)
                {
                    return; // superseded by a newer epoch
                }
            }

            SessionSnapshot snapshot;
            try
            {
                var metadata = (await _context.Store.GetAsync(_key.SessionId, CancellationToken.None))?.ToContract();
                snapshot = await _context.Snapshots.BuildAsync(_key, metadata, CancellationToken.None);
            }
            catch (Exception e)
            {
                // Whatever failed (opencode, the store, Redis), the feed must not stay silent: try again.
                DeliveryLog.ResyncFailed(_context.Logger, _key.SessionId, e.Message);
                continue;
            }

            lock (_gate)
            {
                if (_mode != Mode.Resyncing || _targetEpoch != target)
                {
                    return;
                }

                _epoch = snapshot.Epoch;
                _seq = snapshot.Seq;
                _mode = Mode.Live;
                _context.Broadcaster.SendSnapshot(_group, snapshot);
                _context.Subscriptions.Publish(_group, snapshot);
                DeliverPending();
                if (_pending.Count > 0 && _pending.First().Key.Epoch == _epoch)
                {
                    _mode = Mode.Repairing;
                    _ = RepairAsync(_epoch, _seq, TimeSpan.Zero);
                }
            }

            return;
        }

        lock (_gate)
        {
            if (_mode != Mode.Resyncing || _targetEpoch != target)
            {
                return;
            }

            // No snapshot could be built: deliver the new epoch as it is. Its first event (epoch.started) tells every
            // client to rejoin, which builds a snapshot when the upstream answers again.
            DeliveryLog.ResyncGaveUp(_context.Logger, _key.SessionId);
            _mode = Mode.Live;
            _epoch = target;
            _seq = _pending.Keys.Where(p => p.Epoch == target).Select(p => p.Seq).DefaultIfEmpty(1).Min() - 1;
            DeliverPending();
        }
    }
}

/// <summary>What every <see cref="SessionFeed"/> of this node shares.</summary>
internal sealed record FeedContext(
    ISessionHistory History,
    SnapshotService Snapshots,
    ISessionStore Store,
    ISessionBroadcaster Broadcaster,
    SessionSubscriptions Subscriptions,
    GatewayMetrics Metrics,
    TimeProvider Time,
    ILogger Logger);
