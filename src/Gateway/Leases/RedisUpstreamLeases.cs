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
internal sealed class RedisUpstreamLeases : IUpstreamLeases, IDisposable
{
    private const string AcquireScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        local token = redis.call('INCR', KEYS[2])
        local now = redis.call('TIME')
        local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
        if token < ms then
          token = ms
          redis.call('SET', KEYS[2], token)
        end
        redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
        return token
        """;

    // 1: renewed; 2: it had expired (Redis was unreachable or lost its data) and nobody took it since: reclaimed (a
    // holder since then left the fencing counter above this token); 0: lost.
    private const string RenewScript = """
        local holder = redis.call('GET', KEYS[1])
        if holder == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return 1
        end
        if not holder and tonumber(redis.call('GET', KEYS[2]) or '0') <= tonumber(ARGV[3]) then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return 2
        end
        return 0
        """;

    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          redis.call('PUBLISH', ARGV[2], ARGV[3])
          return 1
        end
        return 0
        """;

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

    public async Task<IUpstreamLease> AcquireAsync(string upstream, CancellationToken ct)
    {
        await SubscribeAsync();
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
                var token = (long)await _redis.Database.ScriptEvaluateAsync(AcquireScript,
                    [_redis.Keys.Lease(upstream), _redis.Keys.Fence(upstream)], [_redis.NodeId, (long)_options.LeaseTtl.TotalMilliseconds]);
                if (token > 0)
                {
                    var lease = new RedisLease(this, upstream, token, $"{_redis.NodeId}|{token}");
                    LeaseLog.Acquired(_logger, upstream, _redis.NodeId, token);
                    return lease;
                }

                if (!logged)
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

    public async Task<string?> HolderAsync(string upstream, CancellationToken ct)
    {
        try
        {
            var value = await _redis.Database.StringGetAsync(_redis.Keys.Lease(upstream));
            return value.IsNull ? null : value.ToString();
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return null;
        }
    }

    public void Dispose() => _subscribe.Dispose();

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
                await _redis.Multiplexer.GetSubscriber().SubscribeAsync(_redis.Keys.LeaseReleased, (_, upstream) =>
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
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewing;
        private int _disposed;

        public RedisLease(RedisUpstreamLeases owner, string upstream, long token, string value)
        {
            _owner = owner;
            Upstream = upstream;
            Token = token;
            Value = value;
            _renewing = RenewAsync();
        }

        public string Upstream { get; }
        public long Token { get; }
        public string Value { get; }
        public CancellationToken Lost => _lost.Token;

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
                        var result = (int)await redis.Database.ScriptEvaluateAsync(RenewScript,
                            [redis.Keys.Lease(Upstream), redis.Keys.Fence(Upstream)], [Value, (long)_owner._options.LeaseTtl.TotalMilliseconds, Token]);
                        if (result == 0)
                        {
                            LeaseLog.Lost(_owner._logger, Upstream, Value, await _owner.HolderAsync(Upstream, CancellationToken.None) ?? "nobody");
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

        public async ValueTask DisposeAsync()
        {
            // Disposing again does nothing (the sources below are disposed by the first call).
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
                    if ((int)await redis.Database.ScriptEvaluateAsync(ReleaseScript, [redis.Keys.Lease(Upstream)],
                            [Value, redis.Keys.LeaseReleased.ToString(), Upstream]) == 1)
                    {
                        LeaseLog.Released(_owner._logger, Upstream, Value);
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    LeaseLog.ReleaseFailed(_owner._logger, Upstream, e.Message);
                }
            }

            _lost.Dispose();
            _stop.Dispose();
        }
    }
}
