using System.Text.Json;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Delivery;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Sessions;

/// <summary>
/// In-process watches of a session's events for the HTTP streams (<c>/api/chat</c>, <c>/api/ai-sdk/chat</c>): the same
/// feeds as the hub's connections (no upstream subscription of their own), a bounded queue per watch, and what those
/// streams restate from a snapshot (the latest answer, paged back past the snapshot's window when it began before it).
/// </summary>
internal sealed class SessionWatches(SessionFeeds feeds, SessionSubscriptions subscriptions, ISessionHistory history,
    SnapshotService snapshots, SessionService sessions, IOptions<OutboxOptions> options, TimeProvider time)
{
    /// <summary>Subscribes to the session's events on this node, then reads its position: nothing falls between.</summary>
    public async Task<SessionWatch> SubscribeAsync(OpencodeClient client, string sessionId, CancellationToken ct)
    {
        var key = new SessionKey(client.UpstreamId, sessionId);
        var subscription = subscriptions.Add(key.GroupName, options.Value.MaxQueuedMessages);
        IAsyncDisposable? feed = null;
        try
        {
            feed = await feeds.AcquireAsync(key, ct);
            return new SessionWatch(client, key, subscription, feed, await history.EnsureAsync(key, ct), time);
        }
        catch
        {
            subscription.Dispose();
            if (feed is not null)
            {
                await feed.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>A snapshot taken after subscribing, so no event falls between it and the watch.</summary>
    public Task<SessionSnapshot> SnapshotAsync(SessionWatch watch, CancellationToken ct) => snapshots.BuildAsync(watch.Key, metadata: null, ct);

    /// <summary>The events after <paramref name="since"/>, when the history still holds them all; null otherwise.</summary>
    public ValueTask<IReadOnlyList<SessionEvent>?> ReadAfterAsync(SessionWatch watch, StreamPosition since, CancellationToken ct) =>
        history.ReadAfterAsync(watch.Key, since, ct);

    /// <summary>
    /// The latest answer: the assistant messages after the last user message, paged back past the snapshot's window
    /// when the answer began before it.
    /// </summary>
    public async Task<IReadOnlyList<MessageWithParts>> LatestAnswerAsync(OpencodeClient client, SessionSnapshot snapshot, CancellationToken ct)
    {
        var messages = snapshot.Messages;
        var earlier = snapshot.Earlier;
        var lastUser = LastUserMessage(messages);
        while (lastUser < 0 && earlier is not null)
        {
            var page = await sessions.LoadEarlierAsync(client, snapshot.SessionId, earlier.Cursor, limit: null, ct);
            messages = [.. page.Messages, .. messages];
            earlier = page.Earlier;
            lastUser = LastUserMessage(page.Messages); // the page comes first: its index is the index in messages
        }

        return [.. messages.Skip(lastUser + 1).Where(m => RoleOf(m) == "assistant")];
    }

    /// <summary>
    /// A window of messages (a snapshot's or a page's) with earlier pages put before it until it starts with a user
    /// message, so that no answer is cut in two; <c>earlier</c>: where the messages before it begin.
    /// </summary>
    public async Task<(IReadOnlyList<MessageWithParts> Messages, EarlierMessages? Earlier)> WholeAnswersAsync(OpencodeClient client,
        string sessionId, IReadOnlyList<MessageWithParts> messages, EarlierMessages? earlier, CancellationToken ct)
    {
        while (earlier is not null && (messages.Count == 0 || RoleOf(messages[0]) != "user"))
        {
            var page = await sessions.LoadEarlierAsync(client, sessionId, earlier.Cursor, limit: null, ct);
            messages = [.. page.Messages, .. messages];
            earlier = page.Earlier;
        }

        return (messages, earlier);
    }

    private static int LastUserMessage(IReadOnlyList<MessageWithParts> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (RoleOf(messages[i]) == "user")
            {
                return i;
            }
        }

        return -1;
    }

    private static string? RoleOf(MessageWithParts message) =>
        message.Info.ValueKind == JsonValueKind.Object && message.Info.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String
            ? role.GetString()
            : null;
}

/// <summary>One in-process watch of a session: its queue of events and snapshots, from <see cref="SubscribedAt"/> on.</summary>
internal sealed class SessionWatch(OpencodeClient client, SessionKey key, SessionSubscriptions.Subscription subscription,
    IAsyncDisposable feed, StreamPosition subscribedAt, TimeProvider time) : IAsyncDisposable
{
    private int _disposed;

    public OpencodeClient Client { get; } = client;
    public SessionKey Key { get; } = key;
    public string SessionId => Key.SessionId;

    /// <summary>The session's position when the watch began: what comes through it follows this.</summary>
    public StreamPosition SubscribedAt { get; } = subscribedAt;

    /// <summary>The next <see cref="SessionEvent"/> or <see cref="SessionSnapshot"/>; throws <see cref="SlowSubscriberException"/> when the queue overflowed.</summary>
    public async ValueTask<object> ReadAsync(CancellationToken ct)
    {
        try
        {
            return await subscription.Reader.ReadAsync(ct);
        }
        catch (System.Threading.Channels.ChannelClosedException e) when (e.InnerException is SlowSubscriberException slow)
        {
            throw slow;
        }
    }

    /// <summary>The next event or snapshot, or null when none came within <paramref name="quiet"/> (time for a keep-alive).</summary>
    public async ValueTask<object?> ReadAsync(TimeSpan quiet, CancellationToken ct)
    {
        using var timer = new CancellationTokenSource(quiet, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timer.Token);
        try
        {
            return await ReadAsync(linked.Token);
        }
        catch (OperationCanceledException) when (timer.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            subscription.Dispose();
            await feed.DisposeAsync();
        }
    }
}
