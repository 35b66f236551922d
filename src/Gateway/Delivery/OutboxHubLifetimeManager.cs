using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery.Internal;

namespace OpencodeGateway.Delivery;

/// <summary>
/// A single-node <see cref="HubLifetimeManager{THub}"/> whose sends never wait on a connection: each message is
/// serialised once and queued per connection in a bounded <see cref="ConnectionOutbox"/>. The framework's default
/// manager awaits every connection's flush, so one stalled client would hold up whoever sends (the event pump).
/// </summary>
internal sealed class OutboxHubLifetimeManager<THub> : HubLifetimeManager<THub>, ILocalGroupManager<THub> where THub : Hub
{
    private readonly ConcurrentDictionary<string, ConnectionOutbox> _connections = new(StringComparer.Ordinal);
    // A group's members as an immutable array, replaced on every change: membership changes are rare next to sends,
    // and a send then walks a plain array (ConcurrentDictionary.Values would take every lock and copy per send).
    private readonly ConcurrentDictionary<string, ConnectionOutbox[]> _groups = new(StringComparer.Ordinal);
    // Serialises membership changes, so concurrent joins to one group never lose each other's copy.
    private readonly Lock _membershipLock = new();
    // Held while the outbox totals are read and while a connection leaves (its count moves into _closedMessages), so a
    // collection never sees a connection's messages twice or not at all: the counter only grows.
    private readonly Lock _totalsLock = new();
    private long _closedMessages;
    private readonly OutboxOptions _options;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;

    public OutboxHubLifetimeManager(IOptions<OutboxOptions> options, GatewayMetrics metrics, ILogger<OutboxHubLifetimeManager<THub>> logger)
    {
        _options = options.Value;
        _metrics = metrics;
        _logger = logger;
        metrics.ObserveOutboxes(Totals);
    }

    public int ConnectionCount => _connections.Count;

    /// <summary>The outbox of a connection of this node (the Redis-backed manager writes through it).</summary>
    internal bool TryGetOutbox(string connectionId, out ConnectionOutbox outbox) => _connections.TryGetValue(connectionId, out outbox!);

    public void AddToLocalGroup(string connectionId, string groupName) => _ = AddToGroupAsync(connectionId, groupName);

    public void RemoveFromLocalGroup(string connectionId, string groupName) => _ = RemoveFromGroupAsync(connectionId, groupName);

    public void SendLocalGroup(string groupName, string methodName, object?[] args) => _ = SendGroupAsync(groupName, methodName, args);

    public override Task OnConnectedAsync(HubConnectionContext connection)
    {
        _connections[connection.ConnectionId] =
            new ConnectionOutbox(connection, _options.MaxQueuedMessages, _options.MaxQueuedBytes, _metrics, _logger);
        return Task.CompletedTask;
    }

    public override Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        ConnectionOutbox? outbox;
        lock (_totalsLock)
        {
            if (!_connections.TryRemove(connection.ConnectionId, out outbox))
            {
                return Task.CompletedTask;
            }

            // Closed, its count stops growing: it moves to _closedMessages once and for all.
            outbox.Close();
            _closedMessages += outbox.Counts.Messages;
        }

        lock (_membershipLock)
        {
            foreach (var group in outbox.Groups)
            {
                RemoveFromGroupCore(outbox, group);
            }

            outbox.Groups.Clear();
        }

        return Task.CompletedTask;
    }

    public override Task AddToGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(groupName);
        if (_connections.TryGetValue(connectionId, out var outbox))
        {
            lock (_membershipLock)
            {
                if (outbox.Groups.Add(groupName))
                {
                    _groups[groupName] = _groups.TryGetValue(groupName, out var members) ? [.. members, outbox] : [outbox];
                }
            }
        }

        return Task.CompletedTask;
    }

    public override Task RemoveFromGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(groupName);
        if (_connections.TryGetValue(connectionId, out var outbox))
        {
            lock (_membershipLock)
            {
                if (outbox.Groups.Remove(groupName))
                {
                    RemoveFromGroupCore(outbox, groupName);
                }
            }
        }

        return Task.CompletedTask;
    }

    // Caller holds _membershipLock.
    private void RemoveFromGroupCore(ConnectionOutbox outbox, string groupName)
    {
        if (!_groups.TryGetValue(groupName, out var members))
        {
            return;
        }

        var remaining = Array.FindAll(members, m => m != outbox);
        if (remaining.Length == 0)
        {
            _groups.TryRemove(groupName, out _);
        }
        else
        {
            _groups[groupName] = remaining;
        }
    }

    public override Task SendAllAsync(string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        var message = Serialize(methodName, args);
        foreach (var (_, outbox) in _connections)
        {
            outbox.Enqueue(message);
        }

        return Task.CompletedTask;
    }

    public override Task SendAllExceptAsync(string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds,
        CancellationToken cancellationToken = default)
    {
        var message = Serialize(methodName, args);
        foreach (var (_, outbox) in _connections)
        {
            if (!excludedConnectionIds.Contains(outbox.Connection.ConnectionId))
            {
                outbox.Enqueue(message);
            }
        }

        return Task.CompletedTask;
    }

    public override Task SendConnectionAsync(string connectionId, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        if (_connections.TryGetValue(connectionId, out var outbox))
        {
            outbox.Enqueue(Serialize(methodName, args));
        }

        return Task.CompletedTask;
    }

    public override Task SendConnectionsAsync(IReadOnlyList<string> connectionIds, string methodName, object?[] args,
        CancellationToken cancellationToken = default)
    {
        SerializedHubMessage? message = null;
        foreach (var id in connectionIds)
        {
            if (_connections.TryGetValue(id, out var outbox))
            {
                outbox.Enqueue(message ??= Serialize(methodName, args));
            }
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupAsync(string groupName, string methodName, object?[] args, CancellationToken cancellationToken = default)
    {
        if (_groups.TryGetValue(groupName, out var members))
        {
            var message = Serialize(methodName, args);
            foreach (var outbox in members)
            {
                outbox.Enqueue(message);
            }
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args,
        CancellationToken cancellationToken = default)
    {
        SerializedHubMessage? message = null;
        var sent = new HashSet<string>(StringComparer.Ordinal);
        foreach (var groupName in groupNames)
        {
            if (_groups.TryGetValue(groupName, out var members))
            {
                foreach (var outbox in members)
                {
                    if (sent.Add(outbox.Connection.ConnectionId))
                    {
                        outbox.Enqueue(message ??= Serialize(methodName, args));
                    }
                }
            }
        }

        return Task.CompletedTask;
    }

    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args,
        IReadOnlyList<string> excludedConnectionIds, CancellationToken cancellationToken = default)
    {
        if (_groups.TryGetValue(groupName, out var members))
        {
            SerializedHubMessage? message = null;
            foreach (var outbox in members)
            {
                if (!excludedConnectionIds.Contains(outbox.Connection.ConnectionId))
                {
                    outbox.Enqueue(message ??= Serialize(methodName, args));
                }
            }
        }

        return Task.CompletedTask;
    }

    public override Task SendUserAsync(string userId, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        SendUsersAsync([userId], methodName, args, cancellationToken);

    public override Task SendUsersAsync(IReadOnlyList<string> userIds, string methodName, object?[] args,
        CancellationToken cancellationToken = default)
    {
        SerializedHubMessage? message = null;
        foreach (var (_, outbox) in _connections)
        {
            if (outbox.Connection.UserIdentifier is { } user && userIds.Contains(user))
            {
                outbox.Enqueue(message ??= Serialize(methodName, args));
            }
        }

        return Task.CompletedTask;
    }

    private OutboxTotals Totals()
    {
        lock (_totalsLock)
        {
            var totals = new OutboxTotals(_closedMessages, 0, 0, 0);
            foreach (var (_, outbox) in _connections)
            {
                var (messages, queuedMessages, queuedBytes) = outbox.Counts;
                totals = new OutboxTotals(totals.Messages + messages, totals.QueuedMessages + queuedMessages,
                    totals.QueuedBytes + queuedBytes, Math.Max(totals.LargestQueuedBytes, queuedBytes));
            }

            return totals;
        }
    }

    private static SerializedHubMessage Serialize(string methodName, object?[] args) =>
        new(new InvocationMessage(methodName, args));
}
