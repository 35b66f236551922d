using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Sessions.Snapshots;

/// <summary>
/// opencode's REST state of each session, fetched once per epoch: concurrent callers share one fetch, and later
/// snapshots of the same epoch reuse it (the live image overlays every change since the epoch began).
/// </summary>
internal sealed class SnapshotBaseCache(UpstreamRegistry upstreams, IOptions<SnapshotOptions> options, TimeProvider time)
{
    private static readonly JsonElement Idle = JsonDocument.Parse("""{"type":"idle"}""").RootElement.Clone();
    private readonly ConcurrentDictionary<SessionKey, Entry> _entries = new();
    private readonly long _maxBytes = options.Value.CacheMaxBytes;

    /// <summary>Fetches made so far (each one costs opencode five REST calls).</summary>
    public long Fetches => Interlocked.Read(ref _fetches);

    private long _fetches;

    /// <summary>The REST state of the session fetched within <paramref name="epoch"/> (or a later one).</summary>
    public async Task<SessionRestState> GetAsync(SessionKey key, long epoch, CancellationToken ct)
    {
        while (true)
        {
            if (_entries.TryGetValue(key, out var entry) && entry.Epoch >= epoch && !entry.Fetch.IsFaulted && !entry.Fetch.IsCanceled)
            {
                entry.LastUsed = time.GetTimestamp();
                return await entry.Fetch.WaitAsync(ct);
            }

            var created = new Entry(epoch, time.GetTimestamp());
            var stored = entry is null ? _entries.TryAdd(key, created) : _entries.TryUpdate(key, created, entry);
            if (!stored)
            {
                continue; // someone else started a fetch meanwhile: share theirs
            }

            _ = FetchAsync(key, created);
            return await created.Fetch.WaitAsync(ct);
        }
    }

    /// <summary>Drops entries unused for <paramref name="idle"/>.</summary>
    public void EvictUnused(TimeSpan idle)
    {
        var now = time.GetTimestamp();
        foreach (var (key, entry) in _entries)
        {
            if (time.GetElapsedTime(entry.LastUsed, now) >= idle)
            {
                _entries.TryRemove(new KeyValuePair<SessionKey, Entry>(key, entry));
            }
        }
    }

    private async Task FetchAsync(SessionKey key, Entry entry)
    {
        Interlocked.Increment(ref _fetches);
        try
        {
            // Shared by every waiter: not cancelled by the first caller; the client's RequestTimeout bounds it.
            var state = await FetchAsync(upstreams.Get(key.Upstream), key.SessionId, CancellationToken.None);
            if (state.Size > _maxBytes)
            {
                _entries.TryRemove(new KeyValuePair<SessionKey, Entry>(key, entry));
            }

            entry.Source.SetResult(state);
        }
        catch (Exception e)
        {
            _entries.TryRemove(new KeyValuePair<SessionKey, Entry>(key, entry));
            entry.Source.SetException(e);
        }
    }

    private static async Task<SessionRestState> FetchAsync(OpencodeClient client, string sessionId, CancellationToken ct)
    {
        var infoTask = client.GetSessionAsync(sessionId, ct);
        var messagesTask = client.GetMessagesAsync(sessionId, ct);
        var todosTask = client.GetTodosAsync(sessionId, ct);
        var info = await infoTask;
        var directory = info.TryGetProperty("directory", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        var statusTask = client.GetStatusMapAsync(directory, ct);
        var permissionsTask = client.GetPendingPermissionsAsync(directory, ct);
        var messages = await messagesTask;
        var statusMap = await statusTask;
        var permissions = await permissionsTask;
        JsonElement? todos;
        try
        {
            todos = await todosTask;
        }
        catch (GatewayException e) when (e.Code != GatewayErrorCodes.UpstreamUnavailable)
        {
            todos = null; // older opencode releases have no todo endpoint (404, or their web UI's HTML)
        }

        var status = statusMap.ValueKind == JsonValueKind.Object && statusMap.TryGetProperty(sessionId, out var s) ? s : Idle;
        List<JsonElement> pending = permissions.ValueKind == JsonValueKind.Array
            ? [.. permissions.EnumerateArray().Where(p => p.TryGetProperty("sessionID", out var id) && id.ValueEquals(sessionId))]
            : [];
        var size = info.GetRawText().Length + (todos?.GetRawText().Length ?? 0)
            + messages.Sum(m => m.Info.GetRawText().Length + m.Parts.Sum(p => (long)p.GetRawText().Length));
        return new SessionRestState(info, messages, todos, status, pending, size);
    }

    private sealed class Entry(long epoch, long now)
    {
        public long Epoch { get; } = epoch;
        public long LastUsed { get; set; } = now;
        public TaskCompletionSource<SessionRestState> Source { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task<SessionRestState> Fetch => Source.Task;
    }
}
