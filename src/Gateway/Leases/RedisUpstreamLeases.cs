using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster;
using OpencodeGateway.Leases.Internal;
using StackExchange.Redis;

namespace OpencodeGateway.Leases;

/// <summary>
/// Leases in Redis: <c>SET NX PX</c> with a value <c>{node}|{token}</c>, the token taken from an <c>INCR</c> counter that
/// never falls below Redis's clock in ms (so tokens keep growing even after Redis lost its data), renewed and released
/// by compare-and-set scripts. A released lease is announced, so waiting nodes take it at once; a crashed holder's
/// lease expires after <see cref="ClusterOptions.LeaseTtl"/>.
/// </summary>
/// <remarks>
/// The leases are spread over the nodes (<see cref="LeaseBalance"/>): every <see cref="ClusterOptions.LeaseRenewInterval"/>
/// each node writes its liveness (expiring after <see cref="ClusterOptions.LeaseTtl"/>), how many leases it holds and how
/// many upstreams it wants, and hands over what it holds above its share when others lack theirs; a free lease is left
/// to a node below its share for <see cref="BalanceGrace"/>, then taken by whoever wants it. The fencing is untouched:
/// every hand-over is a release and a new acquisition with a greater token.
/// </remarks>
internal sealed class RedisUpstreamLeases : BackgroundService, IUpstreamLeases, IHostedLifecycleService
{
    private readonly RedisConnection _redis;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<RedisUpstreamLeases> _logger;
    private readonly SemaphoreSlim _subscribe = new(1, 1);
    private readonly Lock _waitersLock = new();
    private readonly Dictionary<string, TaskCompletionSource> _released = new(StringComparer.Ordinal);
    private bool _subscribed;
    // When Redis was last reachable again: the holder renews at once, others wait a lease TTL before trying, so a Redis
    // that lost its data (or let the lease expire while down) hands it back to its holder instead of to a second node.
    private long _restoredAt;
    private volatile bool _outage;

    // What this node holds, wants (upstreams it tries to take) and is taking now; guarded by _balanceLock.
    private readonly Lock _balanceLock = new();
    private readonly Dictionary<string, RedisLease> _held = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _wanting = new(StringComparer.Ordinal);
    private int _taking;
    // Since when this node has left a free lease to nodes below their share.
    private readonly ConcurrentDictionary<string, long> _leftSince = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _leaving = new();

    public RedisUpstreamLeases(RedisConnection redis, IOptions<ClusterOptions> options, TimeProvider time, ILogger<RedisUpstreamLeases> logger)
    {
        _redis = redis;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _redis.Lost += () => _outage = true;
        _redis.Restored += () =>
        {
            Interlocked.Exchange(ref _restoredAt, _time.GetTimestamp());
            _outage = false;
        };
    }

    /// <summary>How long a node at or above its share leaves a free lease to the nodes below theirs before taking it.</summary>
    private TimeSpan BalanceGrace => 3 * _options.LeaseRetryInterval;

    private RedisKeys Keys => _redis.Keys;

    private RedisKey[] NodeKeys => [Keys.LeaseNodes, Keys.LeaseNodesHeld, Keys.LeaseNodesWanted];

    public async Task<IUpstreamLease> AcquireAsync(string upstream, CancellationToken ct)
    {
        await SubscribeAsync();
        ChangeWanting(upstream, +1);
        try
        {
            var logged = false;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                var released = ReleasedSignal(upstream);
                var restoredAt = Interlocked.Read(ref _restoredAt);
                if (_outage || !_redis.IsConnected)
                {
                    await Task.Delay(_options.LeaseRetryInterval, _time, ct);
                    continue;
                }

                if (restoredAt != 0 && _time.GetElapsedTime(restoredAt) < _options.LeaseTtl)
                {
                    await Task.Delay(_options.LeaseTtl - _time.GetElapsedTime(restoredAt), _time, ct);
                    continue;
                }

                try
                {
                    var (lease, heldElsewhere) = await TryAcquireAsync(upstream);
                    if (lease is not null)
                    {
                        return lease;
                    }

                    if (heldElsewhere && !logged)
                    {
                        LeaseLog.Waiting(_logger, upstream, await HolderAsync(upstream, ct) ?? "?");
                        logged = true;
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    LeaseLog.AcquireFailed(_logger, upstream, e.Message);
                }

                // Try again after the retry interval, or at once when a holder announces it gave the lease up.
                await Task.WhenAny(released.Task, Task.Delay(_options.LeaseRetryInterval, _time, ct));
            }
        }
        finally
        {
            ChangeWanting(upstream, -1);
            _leftSince.TryRemove(upstream, out _);
        }
    }

    /// <summary>
    /// One attempt: a node holding nothing takes a free lease at once; another first asks whether it is free and whose
    /// it is to take (<see cref="LeaseBalance.MayTake"/>). Returns the lease, or null and whether another node holds it.
    /// </summary>
    private async Task<(IUpstreamLease? Lease, bool HeldElsewhere)> TryAcquireAsync(string upstream)
    {
        bool take;
        lock (_balanceLock)
        {
            take = _held.Count == 0 && _taking == 0;
            _taking += take ? 1 : 0;
        }

        if (!take)
        {
            if ((long)await _redis.Database.ScriptEvaluateAsync(LeaseScripts.Acquire, [Keys.Lease(upstream), Keys.Fence(upstream), Keys.LeaseNodesHeld],
                    [_redis.NodeId, (long)_options.LeaseTtl.TotalMilliseconds, "0"]) == 0)
            {
                _leftSince.TryRemove(upstream, out _);
                return (null, true);
            }

            var others = (await NodesAsync(self: null)).Where(n => n.Node != _redis.NodeId).ToList();
            lock (_balanceLock)
            {
                take = LeaseBalance.MayTake(Self(), others) || LeftTooLong(upstream);
                _taking += take ? 1 : 0;
            }

            if (!take)
            {
                return (null, false);
            }
        }

        try
        {
            var token = (long)await _redis.Database.ScriptEvaluateAsync(LeaseScripts.Acquire, [Keys.Lease(upstream), Keys.Fence(upstream), Keys.LeaseNodesHeld],
                [_redis.NodeId, (long)_options.LeaseTtl.TotalMilliseconds, "1"]);
            if (token <= 0)
            {
                return (null, true);
            }

            var lease = new RedisLease(this, upstream, token, $"{_redis.NodeId}|{token}");
            lock (_balanceLock)
            {
                _held[upstream] = lease;
            }

            _leftSince.TryRemove(upstream, out _);
            LeaseLog.Acquired(_logger, upstream, _redis.NodeId, token);
            return (lease, false);
        }
        finally
        {
            lock (_balanceLock)
            {
                _taking--;
            }
        }
    }

    private bool LeftTooLong(string upstream) => _time.GetElapsedTime(_leftSince.GetOrAdd(upstream, _time.GetTimestamp())) >= BalanceGrace;

    public async Task<string?> HolderAsync(string upstream, CancellationToken ct)
    {
        try
        {
            var value = await _redis.Database.StringGetAsync(Keys.Lease(upstream));
            // (a retired lease keeps every node out for a while; nobody holds it)
            return value.IsNull || value.ToString().StartsWith("retired|", StringComparison.Ordinal) ? null : value.ToString();
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return null;
        }
    }

    /// <summary>Every <see cref="ClusterOptions.LeaseRenewInterval"/>: this node's entry among those sharing the leases, and what it hands over.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _redis.ConnectedAsync();
        using var beating = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, _leaving.Token);
        using var timer = new PeriodicTimer(_options.LeaseRenewInterval, _time);
        try
        {
            do
            {
                try
                {
                    await BalanceAsync();
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    LeaseLog.BalanceFailed(_logger, e.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(beating.Token));
        }
        catch (OperationCanceledException) when (beating.IsCancellationRequested)
        {
            // stopping
        }
    }

    private async Task BalanceAsync()
    {
        NodeLoad self;
        lock (_balanceLock)
        {
            self = Self();
        }

        var others = (await NodesAsync(self)).Where(n => n.Node != _redis.NodeId).ToList();
        List<RedisLease> handing;
        lock (_balanceLock)
        {
            self = Self();
            var count = LeaseBalance.ToHandOver(self, others);
            // The newest first: the streams read the shortest time, with the least built on them.
            handing = [.. _held.Values.Where(l => !l.HandingOver).OrderByDescending(l => l.Token).Take(count)];
        }

        foreach (var lease in handing)
        {
            LeaseLog.HandingOver(_logger, lease.Upstream, lease.Value, self.Held, LeaseBalance.Share([self, .. others]));
            lease.StartHandOver();
        }
    }

    /// <summary>The live nodes sharing the leases (after writing <paramref name="self"/>'s entry, when given).</summary>
    private async Task<IReadOnlyList<NodeLoad>> NodesAsync(NodeLoad? self)
    {
        var ttl = (long)_options.LeaseTtl.TotalMilliseconds;
        RedisValue[] args = self is { } s ? [ttl, s.Node, s.Held, s.Wanted] : [ttl];
        var result = (RedisResult[])(await _redis.Database.ScriptEvaluateAsync(LeaseScripts.Nodes, NodeKeys, args))!;
        var nodes = new List<NodeLoad>(result.Length / 3);
        for (var i = 0; i + 2 < result.Length; i += 3)
        {
            nodes.Add(new NodeLoad(result[i].ToString(), (int)result[i + 1], (int)result[i + 2]));
        }

        return nodes;
    }

    // Caller holds _balanceLock. Leases being handed over are not counted: they are on their way to another node.
    private NodeLoad Self() => new(_redis.NodeId, _held.Values.Count(l => !l.HandingOver) + _taking,
        _held.Count + _wanting.Keys.Count(k => !_held.ContainsKey(k)));

    private void ChangeWanting(string upstream, int change)
    {
        lock (_balanceLock)
        {
            var count = _wanting.GetValueOrDefault(upstream) + change;
            if (count > 0)
            {
                _wanting[upstream] = count;
            }
            else
            {
                _wanting.Remove(upstream);
            }
        }
    }

    private void Forget(RedisLease lease)
    {
        lock (_balanceLock)
        {
            if (_held.TryGetValue(lease.Upstream, out var held) && held == lease)
            {
                _held.Remove(lease.Upstream);
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Before the pumps stop and release their leases: this node leaves the nodes sharing them, so the others count
    /// without it and take what it releases at once.
    /// </summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await _leaving.CancelAsync();
        if (ExecuteTask is { } beating)
        {
            await beating.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        try
        {
            await _redis.Database.ScriptEvaluateAsync(LeaseScripts.Leave, NodeKeys, [_redis.NodeId]);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidOperationException)
        {
            // Its liveness expires by itself.
            LeaseLog.BalanceFailed(_logger, e.Message);
        }
    }

    public override void Dispose()
    {
        _subscribe.Dispose();
        _leaving.Dispose();
        base.Dispose();
    }

    private async Task SubscribeAsync()
    {
        if (_subscribed)
        {
            return;
        }

        await _subscribe.WaitAsync();
        try
        {
            if (!_subscribed)
            {
                await _redis.Multiplexer.GetSubscriber().SubscribeAsync(Keys.LeaseReleased, (_, upstream) =>
                {
                    lock (_waitersLock)
                    {
                        if (_released.Remove(upstream.ToString(), out var signal))
                        {
                            signal.TrySetResult();
                        }
                    }
                });
                _subscribed = true;
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Without the announcement waiting nodes still retry every LeaseRetryInterval.
            LeaseLog.AcquireFailed(_logger, "*", e.Message);
        }
        finally
        {
            _subscribe.Release();
        }
    }

    private TaskCompletionSource ReleasedSignal(string upstream)
    {
        lock (_waitersLock)
        {
            if (!_released.TryGetValue(upstream, out var signal))
            {
                signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _released[upstream] = signal;
            }

            return signal;
        }
    }

    private sealed class RedisLease : IUpstreamLease
    {
        private readonly RedisUpstreamLeases _owner;
        private readonly CancellationTokenSource _lost = new();
        private readonly CancellationTokenSource _handOver = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewing;
        private int _disposed;

        public RedisLease(RedisUpstreamLeases owner, string upstream, long token, string value)
        {
            _owner = owner;
            Upstream = upstream;
            Token = token;
            Value = value;
            // (read once: the tokens still tell what happened after the lease is disposed)
            Lost = _lost.Token;
            HandOver = _handOver.Token;
            _renewing = RenewAsync();
        }

        public string Upstream { get; }
        public long Token { get; }
        public string Value { get; }
        public CancellationToken Lost { get; }
        public CancellationToken HandOver { get; }

        /// <summary>Asked to hand the lease over (the pump stops and disposes it).</summary>
        public bool HandingOver => _handOver.IsCancellationRequested;

        public void StartHandOver() => _handOver.Cancel();

        private async Task RenewAsync()
        {
            var redis = _owner._redis;
            using var timer = new PeriodicTimer(_owner._options.LeaseRenewInterval, _owner._time);
            var restored = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnRestored() => Volatile.Read(ref restored).TrySetResult();
            redis.Restored += OnRestored;
            Task<bool>? tick = null;
            try
            {
                // Every renew interval, and at once when Redis is reachable again.
                while (true)
                {
                    tick ??= timer.WaitForNextTickAsync(_stop.Token).AsTask();
                    var signal = Volatile.Read(ref restored).Task;
                    if (await Task.WhenAny(tick, signal) == tick)
                    {
                        if (!await tick)
                        {
                            return;
                        }

                        tick = null;
                    }
                    else
                    {
                        Volatile.Write(ref restored, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                    }

                    try
                    {
                        var result = (int)await redis.Database.ScriptEvaluateAsync(LeaseScripts.Renew,
                            [redis.Keys.Lease(Upstream), redis.Keys.Fence(Upstream)], [Value, (long)_owner._options.LeaseTtl.TotalMilliseconds, Token]);
                        if (result == 0)
                        {
                            LeaseLog.Lost(_owner._logger, Upstream, Value, await _owner.HolderAsync(Upstream, CancellationToken.None) ?? "nobody");
                            _owner.Forget(this);
                            _lost.Cancel();
                            return;
                        }

                        if (result == 2)
                        {
                            LeaseLog.Reclaimed(_owner._logger, Upstream, Value);
                        }
                    }
                    catch (Exception e) when (e is RedisException or TimeoutException)
                    {
                        // Redis is unreachable: nobody can take the lease meanwhile; keep the stream and try again.
                        LeaseLog.RenewFailed(_owner._logger, Upstream, e.Message);
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // released
            }
            finally
            {
                redis.Restored -= OnRestored;
            }
        }

        public ValueTask DisposeAsync() => EndAsync(quarantine: null);

        public ValueTask RetireAsync(TimeSpan quarantine) => EndAsync(quarantine);

        private async ValueTask EndAsync(TimeSpan? quarantine)
        {
            // Ending again does nothing (the sources below are disposed by the first call).
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            await _stop.CancelAsync();
            await _renewing;
            if (!_lost.IsCancellationRequested)
            {
                try
                {
                    var redis = _owner._redis;
                    var quarantineMs = quarantine is { } q ? Math.Max(1, (long)q.TotalMilliseconds) : 0;
                    if ((int)await redis.Database.ScriptEvaluateAsync(LeaseScripts.Release, [redis.Keys.Lease(Upstream), redis.Keys.LeaseNodesHeld],
                            [Value, redis.NodeId, redis.Keys.LeaseReleased.ToString(), Upstream, quarantineMs]) == 1)
                    {
                        if (quarantine is { } retired)
                        {
                            LeaseLog.Retired(_owner._logger, Upstream, Value, retired.TotalSeconds);
                        }
                        else
                        {
                            LeaseLog.Released(_owner._logger, Upstream, Value);
                        }
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    LeaseLog.ReleaseFailed(_owner._logger, Upstream, e.Message);
                }
            }

            _owner.Forget(this);
            _lost.Dispose();
            _handOver.Dispose();
            _stop.Dispose();
        }
    }
}
