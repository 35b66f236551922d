using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster;
using OpencodeGateway.Limits.Internal;
using StackExchange.Redis;

namespace OpencodeGateway.Limits;

/// <summary>
/// The cluster's counts, in Redis. Slots: a hash per name with one field per slot, <c>{incarnation}#{n}</c>, where the
/// incarnation (<c>{node}|{guid}</c>) is new at each start; a slot counts while its incarnation's liveness key, renewed
/// every <see cref="ClusterOptions.LeaseRenewInterval"/> with <see cref="ClusterOptions.LeaseTtl"/>, exists, so a killed
/// node's slots stop counting within the TTL. Each node also keeps its slots in memory and writes them again when Redis
/// lost them (a restart, or its liveness expired during a pause) or missed a release. Windows: a sorted set per name,
/// scored by the nodes' clocks. Notes: a hash per name.
/// </summary>
public sealed class RedisUserCounters : BackgroundService, IUserCounters
{
    private readonly RedisConnection _redis;
    private readonly ClusterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<RedisUserCounters> _logger;
    private readonly string _incarnation;
    private readonly RedisKey _liveness;
    private readonly string _livenessPrefix;
    private readonly string _keyPrefix;
    private readonly long _ttlMs;
    // This node's slots (hash key, field), and the ones given back here whose release Redis did not get yet.
    private readonly ConcurrentDictionary<(string Key, string Field), byte> _held = new();
    private readonly ConcurrentDictionary<(string Key, string Field), byte> _unreleased = new();
    private long _slots;
    private long _occurrences;

    public RedisUserCounters(RedisConnection redis, IOptions<ClusterOptions> options, TimeProvider time, ILogger<RedisUserCounters> logger)
    {
        _redis = redis;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _incarnation = $"{_options.NodeId}|{Guid.NewGuid():N}";
        _keyPrefix = $"{_options.KeyPrefix}:limits:";
        _livenessPrefix = _keyPrefix + "node:";
        _liveness = _livenessPrefix + _incarnation;
        _ttlMs = (long)_options.LeaseTtl.TotalMilliseconds;
    }

    private IDatabase Database => _redis.Database;

    private string SlotsKey(string kind, string name) => $"{_keyPrefix}slots:{kind}:{name}";

    private RedisKey LogKey(string kind, string name) => $"{_keyPrefix}log:{kind}:{name}";

    private RedisKey NotesKey(string kind, string name) => $"{_keyPrefix}notes:{kind}:{name}";

    public async ValueTask<IAsyncDisposable?> TryTakeSlotAsync(string kind, string name, int max, CancellationToken ct)
    {
        var slot = (SlotsKey(kind, name), $"{_incarnation}#{Interlocked.Increment(ref _slots)}");
        var result = (int)await Database.ScriptEvaluateAsync(LimitScripts.TakeSlot, [slot.Item1],
            [_incarnation, max, _livenessPrefix, slot.Item2, _ttlMs]);
        if ((result & 1) == 1)
        {
            _held.TryAdd(slot, 0);
        }

        if ((result & 2) == 2)
        {
            // This node was taken for dead (or Redis lost everything): its other slots may have been dropped.
            await RewriteAsync(_held.Keys.Where(k => k != slot).ToList());
        }

        return (result & 1) == 1 ? new Slot(this, kind, slot) : null;
    }

    public async ValueTask<int> SlotsAsync(string kind, string name, CancellationToken ct) =>
        (int)await Database.ScriptEvaluateAsync(LimitScripts.CountSlots, [SlotsKey(kind, name)], [_incarnation, _livenessPrefix]);

    public async ValueTask<TimeSpan?> TryCountAsync(string kind, string name, int max, TimeSpan window, CancellationToken ct)
    {
        var occurrence = $"{_incarnation}:{Interlocked.Increment(ref _occurrences)}";
        var wait = (long)await Database.ScriptEvaluateAsync(LimitScripts.TryCount, [LogKey(kind, name)],
            [max, (long)window.TotalMilliseconds, occurrence, _time.GetUtcNow().ToUnixTimeMilliseconds()]);
        return wait < 0 ? null : TimeSpan.FromMilliseconds(wait);
    }

    public async ValueTask<int> CountAsync(string kind, string name, TimeSpan window, CancellationToken ct)
    {
        var since = _time.GetUtcNow().ToUnixTimeMilliseconds() - (long)window.TotalMilliseconds;
        return (int)await Database.SortedSetLengthAsync(LogKey(kind, name), since, double.PositiveInfinity, Exclude.Start);
    }

    public async ValueTask NoteAsync(string kind, string name, string member, string value, TimeSpan keep, CancellationToken ct)
    {
        var key = NotesKey(kind, name);
        var batch = Database.CreateTransaction();
        _ = batch.HashSetAsync(key, member, value);
        _ = batch.KeyExpireAsync(key, keep);
        await batch.ExecuteAsync();
    }

    public async ValueTask<IReadOnlyDictionary<string, string>> NotesAsync(string kind, string name, CancellationToken ct)
    {
        var entries = await Database.HashGetAllAsync(NotesKey(kind, name));
        return entries.ToDictionary(e => e.Name.ToString(), e => e.Value.ToString(), StringComparer.Ordinal);
    }

    public async ValueTask ForgetAsync(string kind, string name, IReadOnlyCollection<string> members, CancellationToken ct)
    {
        if (members.Count > 0)
        {
            await Database.HashDeleteAsync(NotesKey(kind, name), [.. members.Select(m => (RedisValue)m)]);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _redis.ConnectedAsync();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if ((int)await Database.ScriptEvaluateAsync(LimitScripts.RenewNode, [_liveness], [_ttlMs]) == 0 && !_held.IsEmpty)
                {
                    await RewriteAsync(_held.Keys.ToList());
                }

                foreach (var slot in _unreleased.Keys)
                {
                    await Database.HashDeleteAsync(slot.Key, slot.Field);
                    _unreleased.TryRemove(slot, out _);
                }
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                LimitsLog.RenewFailed(_logger, e.Message);
            }

            try
            {
                await Task.Delay(_options.LeaseRenewInterval, _time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    // Writes this node's slots again. A slot given back meanwhile is deleted after: whichever of the two writes comes
    // last, the slot ends up absent.
    private async Task RewriteAsync(IReadOnlyList<(string Key, string Field)> slots)
    {
        foreach (var slot in slots)
        {
            await Database.HashSetAsync(slot.Key, slot.Field, 1);
            if (!_held.ContainsKey(slot))
            {
                await Database.HashDeleteAsync(slot.Key, slot.Field);
            }
        }

        if (slots.Count > 0)
        {
            LimitsLog.Rewritten(_logger, slots.Count);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            // Connections closed by now gave their slots back; whatever is left stops counting at once.
            await Database.KeyDeleteAsync(_liveness);
        }
        catch (Exception e) when (e is RedisException or TimeoutException or InvalidOperationException)
        {
            LimitsLog.RenewFailed(_logger, e.Message);
        }
    }

    private async ValueTask ReleaseAsync(string kind, (string Key, string Field) slot)
    {
        _held.TryRemove(slot, out _);
        try
        {
            await Database.HashDeleteAsync(slot.Key, slot.Field);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            _unreleased.TryAdd(slot, 0);
            LimitsLog.ReleaseFailed(_logger, kind, e.Message);
        }
    }

    private sealed class Slot(RedisUserCounters owner, string kind, (string Key, string Field) slot) : IAsyncDisposable
    {
        private int _released;

        public ValueTask DisposeAsync() => Interlocked.Exchange(ref _released, 1) == 0 ? owner.ReleaseAsync(kind, slot) : ValueTask.CompletedTask;
    }
}
