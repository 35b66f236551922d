using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Snapshots;

/// <summary>
/// opencode's REST state of each session, fetched once per epoch: concurrent callers share one fetch, and later
/// snapshots of the same epoch reuse it (the live image overlays every change since the epoch began).
/// </summary>
internal sealed class SnapshotBaseCache(UpstreamRegistry upstreams, SessionTree tree, IOptions<SnapshotOptions> options, TimeProvider time)
{
    private static readonly JsonElement Idle = JsonDocument.Parse("""{"type":"idle"}""").RootElement.Clone();
    // Descendants looked up for one snapshot at most (a run with more subagents lists the first ones).
    private const int MaxDescendants = 500;
    private readonly ConcurrentDictionary<SessionKey, Entry> _entries = new();
    private readonly long _maxBytes = options.Value.CacheMaxBytes;
    private readonly int _maxMessages = options.Value.MaxMessages;

    /// <summary>
    /// Fetches made so far (each one costs opencode seven REST calls, and one more per descendant session: its own
    /// children).
    /// </summary>
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

    private async Task<SessionRestState> FetchAsync(OpencodeClient client, string sessionId, CancellationToken ct)
    {
        var infoTask = client.GetSessionAsync(sessionId, ct);
        var messagesTask = client.GetMessagePageAsync(sessionId, _maxMessages, before: null, ct);
        var todosTask = client.GetTodosAsync(sessionId, ct);
        var descendantsTask = DescendantsAsync(client, sessionId, ct);
        var info = await infoTask;
        tree.Learn(client.UpstreamId, info);
        var directory = info.TryGetProperty("directory", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        var statusTask = client.GetStatusMapAsync(directory, ct);
        var permissionsTask = client.GetPendingPermissionsAsync(directory, ct);
        var questionsTask = client.GetPendingQuestionsAsync(directory, ct);
        var (messages, earlier) = await messagesTask;
        var statusMap = await statusTask;
        var permissions = await permissionsTask;
        var descendants = await descendantsTask;
        // Older opencode releases have no todo or question endpoint (404, or their web UI's HTML).
        var todos = await OptionalAsync(todosTask);
        var questions = await OptionalAsync(questionsTask);

        var run = new HashSet<string>(descendants.Select(c => c.Id), StringComparer.Ordinal) { sessionId };
        var status = StatusOf(statusMap, sessionId);
        var children = descendants.Select(c => c with { Status = StatusOf(statusMap, c.Id) }).ToList();
        var size = info.GetRawText().Length + (todos?.GetRawText().Length ?? 0)
            + messages.Sum(m => m.Info.GetRawText().Length + m.Parts.Sum(p => (long)p.GetRawText().Length));
        return new SessionRestState(info, messages, todos, status, OfRun(permissions, run), size)
        {
            EarlierCursor = earlier, Questions = OfRun(questions, run), Children = children,
        };
    }

    /// <summary>
    /// The session's descendants, oldest first (opencode's <c>GET /session/{id}/children</c>, level by level), learned
    /// by the session tree on the way.
    /// </summary>
    private async Task<List<ChildSession>> DescendantsAsync(OpencodeClient client, string sessionId, CancellationToken ct)
    {
        var found = new List<ChildSession>();
        List<string> level = [sessionId];
        for (var depth = 0; depth < SessionTree.MaxDepth && level.Count > 0 && found.Count < MaxDescendants; depth++)
        {
            // (an opencode without the children endpoint has no subagent sessions to list)
            var answers = await Task.WhenAll(level.Select(id => OptionalAsync(client.GetChildrenAsync(id, ct))));
            level = [];
            foreach (var child in answers.Where(a => a is { ValueKind: JsonValueKind.Array }).SelectMany(a => a!.Value.EnumerateArray()))
            {
                if (found.Count < MaxDescendants && child.TryGetProperty("id", out var id) && id.GetString() is { } childId
                    && SessionTree.ParentOf(child) is { } parentId)
                {
                    tree.Learn(client.UpstreamId, child);
                    var title = child.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                    found.Add(new ChildSession(childId, parentId, title, Idle));
                    level.Add(childId);
                }
            }
        }

        // Session ids sort newest first.
        found.Sort((a, b) => string.CompareOrdinal(b.Id, a.Id));
        return found;
    }

    private static JsonElement StatusOf(JsonElement statusMap, string sessionId) =>
        statusMap.ValueKind == JsonValueKind.Object && statusMap.TryGetProperty(sessionId, out var status) ? status : Idle;

    /// <summary>The requests (permissions or questions) raised in one of the run's sessions.</summary>
    private static List<JsonElement> OfRun(JsonElement? requests, HashSet<string> run) =>
        requests is { ValueKind: JsonValueKind.Array } list
            ? [.. list.EnumerateArray().Where(p => p.TryGetProperty("sessionID", out var id) && id.GetString() is { } s && run.Contains(s))]
            : [];

    private static async Task<JsonElement?> OptionalAsync(Task<JsonElement> fetch)
    {
        try
        {
            return await fetch;
        }
        catch (GatewayException e) when (e.Code != GatewayErrorCodes.UpstreamUnavailable)
        {
            return null;
        }
    }

    private sealed class Entry(long epoch, long now)
    {
        public long Epoch { get; } = epoch;
        public long LastUsed { get; set; } = now;
        public TaskCompletionSource<SessionRestState> Source { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task<SessionRestState> Fetch => Source.Task;
    }
}
