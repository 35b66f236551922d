using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client.Internal;

/// <summary>
/// A session the client has joined, shared by every <see cref="GatewaySession"/> watching it: its state and what the
/// client keeps to (re)join it. Touched only under the client's lock, except the handles, which are copied on write.
/// </summary>
internal sealed class WatchedSession
{
    private ImmutableArray<GatewaySession> _watchers = [];

    public WatchedSession(string sessionId, WatchOptions options, ILogger logger)
    {
        SessionId = sessionId;
        PositionOnly = options.PositionOnly;
        Upstream = options.Upstream ?? options.ResumeFrom?.Upstream;
        Logger = logger;
        State = new SessionState(sessionId, options.PositionOnly, options.ResumeFrom, RaiseUpdated);
    }

    public string SessionId { get; }

    public bool PositionOnly { get; }

    public ILogger Logger { get; }

    public SessionState State { get; }

    public string? Upstream { get; set; }

    public bool Left { get; set; }

    /// <summary>Bumped for every join sent and on leave: a result of an older one is dropped.</summary>
    public int JoinGeneration { get; set; }

    /// <summary>The <c>since</c> of the join in flight or wanted.</summary>
    public StreamPosition? WantedSince { get; set; }

    /// <summary>Failed joins in a row (passing failures), and rejoins asked for in a row: both slow down.</summary>
    public int JoinFailures { get; set; }

    public int RejoinStreak { get; set; }

    public ITimer? RetryTimer { get; set; }

    /// <summary>The session handle it is registered under (compact deltas name it).</summary>
    public int? Handle { get; set; }

    /// <summary>The <c>LoadEarlier</c> in flight, by the cursor it was sent with.</summary>
    public (string Cursor, Task<bool> Load)? EarlierLoad { get; set; }

    /// <summary>Completes with the first join's result applied; fails with the first join's error.</summary>
    public TaskCompletionSource FirstJoin { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ImmutableArray<GatewaySession> Watchers => _watchers;

    public void Add(GatewaySession watcher) => ImmutableInterlocked.Update(ref _watchers, w => w.Add(watcher));

    /// <summary>Removes a watcher; true when it was the last.</summary>
    public bool Remove(GatewaySession watcher) => ImmutableInterlocked.Update(ref _watchers, w => w.Remove(watcher)) && _watchers.IsEmpty;

    /// <summary>Raises <see cref="GatewaySession.Changed"/> of every watcher whose view changed (outside the client's lock).</summary>
    public void FlushChanged()
    {
        foreach (var watcher in _watchers)
        {
            watcher.FlushChanged();
        }
    }

    private void RaiseUpdated(SessionUpdate update)
    {
        foreach (var watcher in _watchers)
        {
            watcher.RaiseUpdated(update);
        }
    }
}
