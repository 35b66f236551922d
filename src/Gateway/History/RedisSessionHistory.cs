using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster;
using OpencodeGateway.Contracts;
using OpencodeGateway.History.Internal;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;
using StackExchange.Redis;
using StreamPosition = OpencodeGateway.Contracts.StreamPosition;

namespace OpencodeGateway.History;

/// <summary>
/// The cluster's history: per session, a Redis hash with the live state, a string per streamed text and a stream of
/// the recent events (ids <c>{epoch}-{seq}</c>), written by the node holding the upstream's stream, one Lua call per
/// batch that also publishes the events (as Centrifugo's Redis engine does), so any node serves <c>since</c>, builds a
/// snapshot, and repairs what its subscription missed.
/// </summary>
/// <remarks>
/// Appends never wait: they queue, in order, for one writer that pipelines them. While Redis does not answer the queue
/// holds what was read (up to <see cref="ClusterOptions.MaxPendingEvents"/>, then the oldest go) and nothing is lost
/// silently: a session whose batch does not follow what Redis holds is written whole, at its current seq, and its
/// watchers repair from that (a snapshot, same epoch). The holder's own watchers get events at once, before Redis.
/// </remarks>
internal sealed class RedisSessionHistory : ISessionHistory, IHostedService, IAsyncDisposable
{
    /// <summary>How events are stored and published: the hub's JSON shape.</summary>
    internal static readonly JsonSerializerOptions EventJson = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(250);
    private const int MaxInFlight = 64;

    private readonly RedisConnection _redis;
    private readonly LiveSessionRegistry _registry;
    private readonly ClusterOptions _options;
    private readonly ReplayOptions _replay;
    private readonly TimeProvider _time;
    private readonly ILogger<RedisSessionHistory> _logger;
    private readonly Channel<AppendBatch> _queue;
    private readonly ConcurrentDictionary<SessionKey, ImmutableArray<Action<SessionEvent>>> _local = new();
    private readonly ConcurrentDictionary<string, UpstreamStream> _openStreams = new(StringComparer.Ordinal);
    private readonly LocalSessionHistory _sequencedHere;
    private readonly CancellationTokenSource _stopping = new();
    private int _disposed;
    private Task? _writer;
    private Task? _streamKeys;
    private long _queued;
    private long _written;
    private int _dropping;
    // The last lease a write was refused under: a node that wakes from a pause past its lease has a burst of batches in
    // flight, each refused; one line says so.
    private string? _fencedLease;

    public RedisSessionHistory(RedisConnection redis, LiveSessionRegistry registry, IOptions<ClusterOptions> options,
        IOptions<ReplayOptions> replay, TimeProvider time, ILogger<RedisSessionHistory> logger)
    {
        _redis = redis;
        _registry = registry;
        _sequencedHere = new LocalSessionHistory(registry);
        _options = options.Value;
        _replay = replay.Value;
        _time = time;
        _logger = logger;
        _queue = Channel.CreateBounded<AppendBatch>(new BoundedChannelOptions(_options.MaxPendingEvents)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.DropOldest,
        }, _ => OnDropped());
    }

    private RedisKeys Keys => _redis.Keys;

    private long TtlMs => (long)_replay.IdleSessionTtl.TotalMilliseconds;

    /// <summary>Batches queued for Redis and not written yet.</summary>
    public long Pending => Interlocked.Read(ref _queued) - Interlocked.Read(ref _written);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _writer = Task.Run(WriteAsync);
        _streamKeys = Task.Run(RefreshStreamKeysAsync);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Write what is queued (the host's shutdown timeout bounds it), then stop.
        _queue.Writer.TryComplete();
        await (_writer ?? Task.CompletedTask).WaitAsync(_options.OperationTimeout * 2, cancellationToken)
            .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await _stopping.CancelAsync();
        await (_streamKeys ?? Task.CompletedTask).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    // Registered as itself, as ISessionHistory and as a hosted service: the container disposes it once per registration.
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _stopping.CancelAsync();
            _stopping.Dispose();
        }
    }

    // ---------------------------------------------------------------- the stream holder's side

    public void Append(LiveSession session, IReadOnlyList<SessionEvent> events)
    {
        if (_local.TryGetValue(session.Key, out var handlers))
        {
            foreach (var evt in events)
            {
                foreach (var handler in handlers)
                {
                    handler(evt);
                }
            }
        }

        var changes = LiveStateMirror.Of(session)?.TakeChanges(session);
        if (events.Count == 0 && changes is null or { IsEmpty: true })
        {
            return;
        }

        var serialized = new (long Seq, string Json, int Size)[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            var json = JsonSerializer.Serialize(events[i], EventJson);
            serialized[i] = (events[i].Seq, json, json.Length);
        }

        var previous = events.Count > 0 ? events[0].Seq - 1 : session.Seq;
        Interlocked.Increment(ref _queued);
        _queue.Writer.TryWrite(new AppendBatch(session.Key, LeaseOf(session.StreamId), session.StreamId ?? "", session.Epoch,
            previous, session.Seq, changes ?? new LiveChanges(), serialized));
    }

    public async ValueTask<IReadOnlyList<SessionKey>> OpenStreamAsync(UpstreamStream stream, CancellationToken ct)
    {
        _openStreams[stream.Upstream] = stream;
        var database = _redis.Database;
        await database.StringSetAsync(Keys.Stream(stream.Upstream), stream.Id, _options.LeaseTtl);
        var cutoff = _time.GetUtcNow().ToUnixTimeMilliseconds() - TtlMs;
        await database.SortedSetRemoveRangeByScoreAsync(Keys.Active(stream.Upstream), double.NegativeInfinity, cutoff);
        return await ActiveSessionsAsync(stream.Upstream, ct);
    }

    public async ValueTask<IReadOnlyList<SessionKey>> ActiveSessionsAsync(string upstream, CancellationToken ct)
    {
        var cutoff = _time.GetUtcNow().ToUnixTimeMilliseconds() - TtlMs;
        var active = await _redis.Database.SortedSetRangeByScoreAsync(Keys.Active(upstream), cutoff);
        return [.. active.Select(id => new SessionKey(upstream, id.ToString()))];
    }

    public async ValueTask CloseStreamAsync(string upstream, CancellationToken ct)
    {
        _openStreams.TryRemove(upstream, out _);
        // What the stream produced is in Redis before the lease goes (bounded: Redis may be down).
        var target = Interlocked.Read(ref _queued);
        var deadline = _time.GetTimestamp();
        while (Interlocked.Read(ref _written) < target && _time.GetElapsedTime(deadline) < _options.OperationTimeout * 2)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, CancellationToken.None);
        }

        try
        {
            await _redis.Database.KeyDeleteAsync(Keys.Stream(upstream));
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            HistoryLog.WriteFailed(_logger, upstream, e.Message);
        }
    }

    public async ValueTask<string?> ConnectedStreamAsync(string upstream, CancellationToken ct)
    {
        var value = await _redis.Database.StringGetAsync(Keys.Stream(upstream));
        return value.IsNullOrEmpty ? null : value.ToString();
    }

    public async ValueTask<LiveSessionImage?> LoadAsync(SessionKey key, CancellationToken ct) => await ReadImageAsync(key, ct);

    public async ValueTask<long> NewEpochAsync(SessionKey key, long previous, CancellationToken ct)
    {
        var result = await _redis.Database.ScriptEvaluateAsync(RedisHistoryScripts.NewEpoch, [Keys.LastEpoch], [previous]);
        return long.Parse(result.ToString());
    }

    // ---------------------------------------------------------------- every node's side

    public async ValueTask<StreamPosition> EnsureAsync(SessionKey key, CancellationToken ct)
    {
        var result = (RedisResult[])(await _redis.Database.ScriptEvaluateAsync(RedisHistoryScripts.Ensure,
            [Keys.State(key.Upstream, key.SessionId), Keys.LastEpoch, Keys.Stream(key.Upstream), Keys.Active(key.Upstream)],
            [TtlMs, key.SessionId]))!;
        return new StreamPosition(long.Parse(result[0].ToString()), long.Parse(result[1].ToString()));
    }

    // The stream holder's own state is ahead of Redis (its writes are queued) and is what it already delivered to its
    // local watchers: what it sequences is read from there, so a join on this node misses nothing delivered here.
    private bool SequencedHere(SessionKey key) =>
        _openStreams.TryGetValue(key.Upstream, out var stream) && _registry.TryGet(key, out _)
        && _registry.Use(key, s => s.StreamId == stream.Id);

    public async ValueTask<IReadOnlyList<SessionEvent>?> ReadAfterAsync(SessionKey key, StreamPosition since, CancellationToken ct)
    {
        if (SequencedHere(key) && await _sequencedHere.ReadAfterAsync(key, since, ct) is { } local)
        {
            return local;
        }

        var result = await _redis.Database.ScriptEvaluateAsync(RedisHistoryScripts.ReadAfter,
            [Keys.State(key.Upstream, key.SessionId), Keys.History(key.Upstream, key.SessionId)], [since.Epoch, since.Seq]);
        if (result.IsNull)
        {
            return null;
        }

        var entries = (RedisResult[])result!;
        var events = new List<SessionEvent>(entries.Length);
        foreach (var entry in entries)
        {
            events.Add(JsonSerializer.Deserialize<SessionEvent>(entry.ToString(), EventJson)!);
        }

        return events;
    }

    public async ValueTask<LiveSessionImage?> ReadImageAsync(SessionKey key, CancellationToken ct)
    {
        if (SequencedHere(key))
        {
            return await _sequencedHere.ReadImageAsync(key, ct);
        }

        var result = await _redis.Database.ScriptEvaluateAsync(RedisHistoryScripts.ReadState,
            [Keys.State(key.Upstream, key.SessionId)], [Keys.TextPrefix(key.Upstream, key.SessionId)]);
        if (result.IsNull)
        {
            return null;
        }

        var parts = (RedisResult[])result!;
        var fields = (RedisResult[])parts[0]!;
        var textList = (RedisResult[])parts[1]!;
        var entries = new Dictionary<string, string>(fields.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < fields.Length; i += 2)
        {
            entries[fields[i].ToString()] = fields[i + 1].ToString();
        }

        var texts = new Dictionary<string, string>(textList.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < textList.Length; i += 2)
        {
            texts[textList[i].ToString()] = textList[i + 1].ToString();
        }

        if (!entries.TryGetValue("~e", out var epoch) || !entries.TryGetValue("~q", out var seq))
        {
            return null;
        }

        var stream = entries.GetValueOrDefault("~x");
        return LiveStateEntries.Decode(key, long.Parse(epoch), long.Parse(seq), entries, texts) with
        {
            StreamId = string.IsNullOrEmpty(stream) ? null : stream,
        };
    }

    /// <summary>The session's position in Redis, or null when it has no state there.</summary>
    public async ValueTask<StreamPosition?> GetHeadAsync(SessionKey key, CancellationToken ct)
    {
        if (SequencedHere(key))
        {
            return await _sequencedHere.GetHeadAsync(key, ct);
        }

        var values = await _redis.Database.HashGetAsync(Keys.State(key.Upstream, key.SessionId), ["~e", "~q"]);
        return values[0].IsNull || values[1].IsNull ? null : new StreamPosition((long)values[0], (long)values[1]);
    }

    public async ValueTask<SessionActivity?> ReadActivityAsync(SessionKey key, CancellationToken ct)
    {
        if (SequencedHere(key))
        {
            return await _sequencedHere.ReadActivityAsync(key, ct);
        }

        var values = await _redis.Database.HashGetAsync(Keys.State(key.Upstream, key.SessionId), ["~e", "~q", LiveStateEntries.Status]);
        return values[0].IsNull || values[1].IsNull
            ? null
            : new SessionActivity(new StreamPosition((long)values[0], (long)values[1]), !values[2].IsNull && LiveSession.IsBusy(values[2].ToString()));
    }

    public async ValueTask<IAsyncDisposable> WatchAsync(SessionKey key, Action<SessionEvent> onEvent, CancellationToken ct)
    {
        _local.AddOrUpdate(key, static (_, h) => [h], static (_, list, h) => list.Add(h), onEvent);
        var queue = await _redis.Multiplexer.GetSubscriber().SubscribeAsync(Keys.Events(key.Upstream, key.SessionId));
        // One queue per session: its messages are handled one by one, in the order Redis published them.
        queue.OnMessage(message =>
        {
            SessionEvent? evt;
            try
            {
                evt = JsonSerializer.Deserialize<SessionEvent>(message.Message.ToString(), EventJson);
            }
            catch (JsonException e)
            {
                HistoryLog.MalformedMessage(_logger, key.SessionId, e.Message);
                return;
            }

            if (evt is not null)
            {
                onEvent(evt);
            }
        });
        return new Watch(this, key, onEvent, queue);
    }

    // ---------------------------------------------------------------- the writer

    private async Task WriteAsync()
    {
        var inFlight = new Queue<(AppendBatch Batch, Task<RedisResult> Call)>();
        while (true)
        {
            // Pipelined: up to MaxInFlight calls go out, in order; their answers are handled in the same order.
            while (inFlight.Count < MaxInFlight && _queue.Reader.TryRead(out var next))
            {
                inFlight.Enqueue((next, Send(next)));
            }

            if (inFlight.Count == 0)
            {
                if (!await _queue.Reader.WaitToReadAsync())
                {
                    return; // completed: the host stops
                }

                continue;
            }

            var (batch, call) = inFlight.Dequeue();
            if (await CompleteAsync(batch, call))
            {
                continue;
            }

            // Redis did not answer: this batch and every one after it go again, one by one, once it does (a batch that
            // did reach Redis answers DUP).
            List<AppendBatch> again = [batch, .. inFlight.Select(f => f.Batch)];
            inFlight.Clear();
            foreach (var pending in again)
            {
                while (!await CompleteAsync(pending, Send(pending)))
                {
                    if (!await WaitForRedisAsync())
                    {
                        return; // stopping with Redis down: what could not be written is lost with this node
                    }
                }
            }
        }
    }

    private Task<RedisResult> Send(AppendBatch batch)
    {
        var key = batch.Key;
        var changes = batch.Changes;
        var args = new List<RedisValue>(18 + changes.Sets.Count * 2 + changes.Deletes.Count + (changes.TextSets.Count + changes.TextAppends.Count) * 2 + batch.Events.Length * 3)
        {
            batch.Lease, batch.Epoch.ToString(), batch.PreviousSeq, batch.Seq, batch.StreamId, changes.Full ? "1" : "0",
            Keys.Events(key.Upstream, key.SessionId).ToString(), Keys.TextPrefix(key.Upstream, key.SessionId),
            _replay.MaxEvents, _replay.MaxBytes, TtlMs, key.SessionId,
            changes.Sets.Count, changes.Deletes.Count, changes.TextSets.Count, changes.TextAppends.Count, batch.Events.Length,
        };
        foreach (var (field, value) in changes.Sets)
        {
            args.Add(field);
            args.Add(value);
        }

        foreach (var field in changes.Deletes)
        {
            args.Add(field);
        }

        foreach (var (name, value) in changes.TextSets.Concat(changes.TextAppends))
        {
            args.Add(name);
            args.Add(value);
        }

        foreach (var (seq, json, size) in batch.Events)
        {
            args.Add(seq);
            args.Add(json);
            args.Add(size + 64);
        }

        return _redis.Database.ScriptEvaluateAsync(RedisHistoryScripts.Append,
            [Keys.State(key.Upstream, key.SessionId), Keys.History(key.Upstream, key.SessionId), Keys.Lease(key.Upstream), Keys.Active(key.Upstream)],
            [.. args]);
    }

    /// <summary>Handles a batch's answer; false when Redis did not answer (the batch must be sent again).</summary>
    private async Task<bool> CompleteAsync(AppendBatch batch, Task<RedisResult> call)
    {
        string result;
        try
        {
            result = (await call).ToString();
        }
        catch (Exception e) when (e is RedisConnectionException or RedisTimeoutException or TimeoutException
            || (e is RedisServerException && e.Message.Contains("LOADING", StringComparison.Ordinal)))
        {
            HistoryLog.WriteFailed(_logger, batch.Key.SessionId, e.Message);
            return false;
        }
        catch (RedisServerException e)
        {
            // A script error is a bug; the session is written whole so its watchers are not left behind.
            HistoryLog.WriteRejected(_logger, batch.Key.SessionId, e.Message);
            result = "RESYNC";
        }

        if (result == "NOLEASE")
        {
            // Nobody holds the lease (Redis lost it): the holder takes it back at its next renewal, unless another node
            // took it meanwhile (then the batch is fenced). Until then the batch waits, as for a Redis that does not answer.
            HistoryLog.WaitingForLease(_logger, batch.Key.Upstream, batch.Lease);
            return false;
        }

        Interlocked.Increment(ref _written);
        Interlocked.Exchange(ref _dropping, 0);
        switch (result)
        {
            case "OK" or "DUP":
                return true;
            case "FENCED":
                if (Interlocked.Exchange(ref _fencedLease, batch.Lease) != batch.Lease)
                {
                    HistoryLog.Fenced(_logger, batch.Key.Upstream, batch.Lease);
                }

                return true;
            case "NEWER":
                await MoveAboveNewerEpochAsync(batch.Key, batch.Epoch);
                return true;
            default:
                // Redis does not hold what this batch follows: write the session whole, now, at its current seq.
                await RewriteAsync(batch.Key);
                return true;
        }
    }

    /// <summary>
    /// Redis holds a newer epoch of a session this node sequences in <paramref name="overtaken"/>: another node started
    /// one while Redis had lost its data (a join there found no state). Epochs only grow for every client, so the
    /// session moves to an epoch above it (its watchers get a snapshot of that epoch, texts kept with gap marks), whose
    /// first batch then writes it whole.
    /// </summary>
    private async Task MoveAboveNewerEpochAsync(SessionKey key, long overtaken)
    {
        while (_registry.TryGet(key, out _) && _registry.Use(key, s => s.Epoch) == overtaken)
        {
            try
            {
                var epoch = await NewEpochAsync(key, overtaken, CancellationToken.None);
                var emitted = new List<SessionEvent>(1);
                _registry.Use(key, live =>
                {
                    if (live.Epoch == overtaken)
                    {
                        live.BeginEpoch(Math.Max(epoch, live.Epoch + 1), emitted);
                        Append(live, emitted);
                    }

                    return 0;
                });
                HistoryLog.EpochOvertaken(_logger, key.SessionId, overtaken, epoch);
                return;
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                HistoryLog.WriteFailed(_logger, key.SessionId, e.Message);
                if (!await WaitForRedisAsync())
                {
                    return;
                }
            }
        }
    }

    private async Task RewriteAsync(SessionKey key)
    {
        while (true)
        {
            AppendBatch? whole = null;
            if (_registry.TryGet(key, out _))
            {
                whole = _registry.Use(key, session =>
                {
                    var mirror = LiveStateMirror.Of(session);
                    mirror?.Reset();
                    var changes = mirror?.TakeChanges(session);
                    return changes is null ? null
                        : new AppendBatch(key, LeaseOf(session.StreamId), session.StreamId ?? "", session.Epoch, session.Seq, session.Seq, changes, []);
                });
            }

            if (whole is null)
            {
                return; // no longer sequenced here
            }

            HistoryLog.Rewriting(_logger, key.SessionId, whole.Epoch, whole.Seq);
            Interlocked.Increment(ref _queued);
            if (await CompleteAsync(whole, Send(whole)) || !await WaitForRedisAsync())
            {
                return;
            }
        }
    }

    /// <summary>Waits until Redis is reachable again; false when the node stops first.</summary>
    private async Task<bool> WaitForRedisAsync()
    {
        do
        {
            if (_stopping.IsCancellationRequested)
            {
                return false;
            }

            await Task.Delay(RetryDelay, _time, CancellationToken.None);
        }
        while (!_redis.IsConnected);

        return true;
    }

    private void OnDropped()
    {
        Interlocked.Increment(ref _written);
        if (Interlocked.Exchange(ref _dropping, 1) == 0)
        {
            HistoryLog.Dropping(_logger, _options.MaxPendingEvents);
        }
    }

    /// <summary>Keeps each open stream's key alive while this node reads the stream (it expires if the node dies).</summary>
    private async Task RefreshStreamKeysAsync()
    {
        using var timer = new PeriodicTimer(_options.LeaseRenewInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                foreach (var stream in _openStreams.Values)
                {
                    try
                    {
                        await _redis.Database.StringSetAsync(Keys.Stream(stream.Upstream), stream.Id, _options.LeaseTtl);
                    }
                    catch (Exception e) when (e is RedisException or TimeoutException)
                    {
                        HistoryLog.WriteFailed(_logger, stream.Upstream, e.Message);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    /// <summary>The lease part (<c>{node}|{token}</c>) of a stream id (<c>{node}|{token}|{connection}</c>).</summary>
    private static string LeaseOf(string? streamId) =>
        streamId is { } id && id.LastIndexOf('|') is > 0 and var cut ? id[..cut] : "";

    private sealed record AppendBatch(SessionKey Key, string Lease, string StreamId, long Epoch, long PreviousSeq, long Seq,
        LiveChanges Changes, (long Seq, string Json, int Size)[] Events);

    private sealed class Watch(RedisSessionHistory owner, SessionKey key, Action<SessionEvent> handler, ChannelMessageQueue queue)
        : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            while (owner._local.TryGetValue(key, out var list))
            {
                var updated = list.Remove(handler);
                if (updated.IsEmpty
                        ? owner._local.TryRemove(new KeyValuePair<SessionKey, ImmutableArray<Action<SessionEvent>>>(key, list))
                        : owner._local.TryUpdate(key, updated, list))
                {
                    break;
                }
            }

            try
            {
                await queue.UnsubscribeAsync();
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Redis is unreachable: the subscription is gone with the connection anyway.
            }
        }
    }
}
