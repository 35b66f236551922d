using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing.Internal;
using OpencodeGateway.Ingest;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Sequencing;

/// <summary>
/// The sequencer side of the event path: applies each upstream event to its session's live state (which numbers what
/// clients get) and appends the result to the history, which passes it on to the session's watchers. With
/// <see cref="StreamingOptions.CoalesceWindow"/> &gt; 0, consecutive text deltas of the same part within the window
/// become one delta (first offset, concatenated text) before they are applied, so seq, offsets, replay and snapshots
/// all see the merged event and the client rules hold unchanged. What a subagent's session waits for (permissions,
/// questions) and its title and status are also applied to every ancestor session, so the watchers of the session the
/// user prompted see everything its run waits for (<see cref="LiveSession.ApplyFromDescendant"/>).
/// </summary>
internal sealed class SessionEventDispatcher : IUpstreamEventSink, IDisposable
{
    private readonly LiveSessionRegistry registry;
    private readonly ISequencedEventSink history;
    private readonly SessionTree tree;
    private readonly ILogger<SessionEventDispatcher> logger;
    private readonly TimeSpan _window;
    // Deltas held back, one per session at most; guarded by _pendingLock (taken before any session lock).
    private readonly Dictionary<SessionKey, PendingDelta> _pending = [];
    private readonly Lock _pendingLock = new();
    private readonly ITimer? _timer;
    private bool _timerArmed;

    public SessionEventDispatcher(LiveSessionRegistry registry, ISequencedEventSink history, SessionTree tree,
        ILogger<SessionEventDispatcher> logger, IOptions<StreamingOptions> options, TimeProvider time)
    {
        this.registry = registry;
        this.history = history;
        this.tree = tree;
        this.logger = logger;
        _window = options.Value.CoalesceWindow;
        if (_window > TimeSpan.Zero)
        {
            _timer = time.CreateTimer(static state => ((SessionEventDispatcher)state!).FlushPending(), this,
                Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    public async ValueTask OnEventAsync(UpstreamStream stream, UpstreamEvent e, CancellationToken ct)
    {
        var key = new SessionKey(stream.Upstream, e.SessionId!);
        if (!registry.TryGet(key, out var session) || session.StreamId != stream.Id)
        {
            await BringOntoStreamAsync(key, stream, ct);
        }

        if (e.Kind == UpstreamEventKind.SessionUpdated)
        {
            tree.Learn(key, e.ParentId);
        }

        var ancestors = await AncestorsToTellAsync(key, e, ct);
        foreach (var ancestor in ancestors)
        {
            var ancestorKey = key with { SessionId = ancestor };
            if (!registry.TryGet(ancestorKey, out var live) || live.StreamId != stream.Id)
            {
                await BringOntoStreamAsync(ancestorKey, stream, ct);
            }
        }

        if (ancestors.Count == 0)
        {
            OnEvent(stream.Upstream, e);
            return;
        }

        lock (_pendingLock)
        {
            // (a held delta of the session goes first; these kinds are never held)
            FlushPendingOf(key);
            DispatchNow(stream.Upstream, e, ancestors);
        }
    }

    /// <summary>
    /// The ancestors whose watchers must see this event of a subagent's session: for what a run waits for (asked and
    /// answered), asking opencode for the links not known yet; for a new title or status, the ones known (a session's
    /// own events name its parent before its status changes).
    /// </summary>
    private async ValueTask<IReadOnlyList<string>> AncestorsToTellAsync(SessionKey key, UpstreamEvent e, CancellationToken ct)
    {
        switch (e.Kind)
        {
            case UpstreamEventKind.PermissionAsked or UpstreamEventKind.PermissionReplied or UpstreamEventKind.QuestionAsked
                or UpstreamEventKind.QuestionReplied or UpstreamEventKind.QuestionRejected:
                try
                {
                    return await tree.GetAncestorsAsync(key, ct);
                }
                catch (GatewayException failure)
                {
                    SequencingLog.AncestorsUnknown(logger, key.SessionId, e.Type ?? e.Kind.ToString(), failure.Message);
                    return [];
                }
            case UpstreamEventKind.SessionUpdated or UpstreamEventKind.Status:
                var known = new List<string>();
                return tree.TryGetAncestors(key, known) ? known : [];
            default:
                return [];
        }
    }

    /// <summary>Applies one event of a session this node sequences on the upstream's current stream.</summary>
    internal void OnEvent(string upstream, UpstreamEvent e)
    {
        if (_timer is null)
        {
            DispatchNow(upstream, e);
            return;
        }

        lock (_pendingLock)
        {
            var key = new SessionKey(upstream, e.SessionId!);
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
            foreach (var (key, pending) in _pending)
            {
                DispatchNow(key.Upstream, pending.ToEvent());
            }

            _pending.Clear();
        }
    }

    private void DispatchNow(string upstream, UpstreamEvent e, IReadOnlyList<string>? ancestors = null)
    {
        var emitted = new List<SessionEvent>(2);
        var child = registry.Use(new SessionKey(upstream, e.SessionId!), session =>
        {
            session.Apply(e, emitted);
            if (emitted.Count > 0)
            {
                history.Append(session, emitted);
            }

            // What the ancestors show of this session (an unchanged status changes nothing there either).
            return ancestors is { Count: > 0 } && (e.Kind != UpstreamEventKind.Status || emitted.Count > 0)
                ? new ChildSession(session.SessionId, ancestors[0], session.Title, session.Status ?? IdleStatus)
                : null;
        });

        foreach (var ancestor in ancestors ?? [])
        {
            // One session's lock at a time: never the child's and an ancestor's together.
            emitted.Clear();
            registry.Use(new SessionKey(upstream, ancestor), live =>
            {
                live.ApplyFromDescendant(e, e.SessionId!, child, emitted);
                if (emitted.Count > 0)
                {
                    history.Append(live, emitted);
                }

                return emitted.Count;
            });
        }
    }

    private static readonly System.Text.Json.JsonElement IdleStatus =
        System.Text.Json.JsonDocument.Parse("""{"type":"idle"}""").RootElement.Clone();

    // Caller holds _pendingLock.
    private void FlushPendingOf(SessionKey key)
    {
        if (_pending.Remove(key, out var pending))
        {
            DispatchNow(key.Upstream, pending.ToEvent());
        }
    }

    /// <summary>
    /// A new connection of the upstream's stream: events in between are gone. Every live session of the upstream (this
    /// node's, and in a cluster every one the store holds) starts a new epoch that keeps its streamed text and marks
    /// where it may be missing (see <see cref="LiveSession"/>); its first event tells every node's watchers.
    /// </summary>
    public async ValueTask OnStreamConnectedAsync(UpstreamStream stream, CancellationToken ct)
    {
        // Held deltas belong to the epoch that is ending.
        FlushPending();
        if (registry.StreamOf(stream.Upstream) is { } previous && previous.Lease != stream.Lease)
        {
            // Another node may have sequenced the upstream since this node last held it: the store has the truth.
            registry.ForgetUpstream(stream.Upstream);
        }

        registry.SetStream(stream.Upstream, stream);
        var keys = new HashSet<SessionKey>(registry.SessionsOf(stream.Upstream).Select(s => s.Key));
        keys.UnionWith(await history.OpenStreamAsync(stream, ct));
        foreach (var key in keys)
        {
            await BringOntoStreamAsync(key, stream, ct);
        }

        if (keys.Count > 0)
        {
            SequencingLog.Resynchronising(logger, stream.Upstream, keys.Count);
        }
    }

    public async ValueTask OnStreamClosedAsync(string upstream, CancellationToken ct)
    {
        FlushPending();
        if (registry.StreamOf(upstream) is { } stream)
        {
            // Kept as a stream no session is continuous with: sessions joined meanwhile start a new epoch once it is back.
            registry.SetStream(upstream, stream with { Connection = -1 });
        }

        await history.CloseStreamAsync(upstream, ct);
    }

    /// <summary>
    /// The upstream was removed: every session of it this node knows or the store holds gets an <c>error</c>
    /// (<c>upstream_not_found</c>) and, when it ran, goes idle (its run is gone with the server), in the epoch it is in:
    /// nothing is restated, nothing more will come. Written under <paramref name="lease"/>, then stored.
    /// </summary>
    public async ValueTask OnUpstreamRemovedAsync(string upstream, string lease, CancellationToken ct)
    {
        FlushPending();
        var keys = new HashSet<SessionKey>(registry.SessionsOf(upstream).Select(s => s.Key));
        keys.UnionWith(await history.ActiveSessionsAsync(upstream, ct));
        var streamId = $"{lease}|-1";
        var error = JsonSerializer.SerializeToElement(new
        {
            name = GatewayErrorCodes.UpstreamNotFound,
            data = new { message = $"Upstream '{upstream}' was removed from the gateway; its sessions are gone with it." },
        });
        var told = 0;
        foreach (var key in keys)
        {
            if (!registry.TryGet(key, out _))
            {
                if (await history.LoadAsync(key, ct) is not { } image)
                {
                    continue; // forgotten meanwhile
                }

                registry.GetOrAdd(registry.FromImage(image));
            }

            var emitted = new List<SessionEvent>(2);
            registry.Use(key, session =>
            {
                // Written under this node's lease, whichever stream the session was last continuous with.
                session.StreamId = streamId;
                session.Apply(new UpstreamEvent { Kind = UpstreamEventKind.Error, Size = 128, Payload = error, SessionId = key.SessionId }, emitted);
                if (session.Busy)
                {
                    session.Apply(new UpstreamEvent { Kind = UpstreamEventKind.Status, Size = 16, Payload = IdleStatus, SessionId = key.SessionId }, emitted);
                }

                history.Append(session, emitted);
                return 0;
            });
            told++;
        }

        SequencingLog.UpstreamRemoved(logger, upstream, told);
        await history.CloseStreamAsync(upstream, ct);
    }

    /// <summary>
    /// Makes sure this node sequences the session on <paramref name="stream"/>: loads it from the store (or starts it)
    /// when this node has no state of it, and starts a new epoch when its state is not continuous with the stream.
    /// </summary>
    private async ValueTask BringOntoStreamAsync(SessionKey key, UpstreamStream stream, CancellationToken ct)
    {
        if (!registry.TryGet(key, out var session))
        {
            var image = await history.LoadAsync(key, ct);
            session = registry.GetOrAdd(image is not null ? registry.FromImage(image)
                : registry.NewSession(key, await history.NewEpochAsync(key, 0, ct)));
        }

        if (session.StreamId == stream.Id)
        {
            return;
        }

        var epoch = await history.NewEpochAsync(key, session.Epoch, ct);
        var emitted = new List<SessionEvent>(1);
        registry.Use(key, live =>
        {
            if (live.StreamId != stream.Id)
            {
                live.BeginEpoch(Math.Max(epoch, live.Epoch + 1), emitted);
                live.StreamId = stream.Id;
                history.Append(live, emitted);
            }

            return 0;
        });
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
