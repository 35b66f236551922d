using System.Collections.Concurrent;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery.Internal;

namespace OpencodeGateway.Delivery;

/// <summary>
/// The cluster's lifetime manager: SignalR's own Redis backplane (<see cref="RedisHubLifetimeManager{THub}"/>: group
/// membership, user, connection and group sends across nodes) composed with this node's
/// <see cref="OutboxHubLifetimeManager{THub}"/>, which owns every connection's bounded outbox. The backplane sees each
/// connection through an <see cref="OutboxConnectionContext"/>, so its channel handlers enqueue instead of awaiting a
/// client's flush: a stalled client never delays its group on any node (measured: the package alone froze a 20-client
/// group for 7.2 s behind one). Local groups (<see cref="ILocalGroupManager{THub}"/>) stay on the node.
/// </summary>
internal sealed class RedisOutboxHubLifetimeManager<THub> : HubLifetimeManager<THub>, ILocalGroupManager<THub>, IDisposable
    where THub : Hub
{
    private readonly OutboxHubLifetimeManager<THub> _local;
    private readonly RedisHubLifetimeManager<THub> _backplane;
    private readonly ConcurrentDictionary<string, OutboxConnectionContext> _proxies = new(StringComparer.Ordinal);
    // Completes once the backplane subscribed to its own channels (see the constructor).
    private readonly Task _subscribed;

    public RedisOutboxHubLifetimeManager(IOptions<OutboxOptions> outbox, GatewayMetrics metrics, ILoggerFactory loggerFactory,
        IOptions<RedisOptions> redis, IHubProtocolResolver protocols, IOptions<HubOptions> globalHubOptions, IOptions<HubOptions<THub>> hubOptions)
    {
        _local = new OutboxHubLifetimeManager<THub>(outbox, metrics, loggerFactory.CreateLogger<OutboxHubLifetimeManager<THub>>());
        // The package stores its connection before it subscribes to its channels (all, group commands, acks), and a call
        // made meanwhile goes ahead: a node's first connections could miss sends to all, and its first group command to
        // another node lose that node's ack (the call then waits 30 s). So the package's connection is held back until a
        // first call of ours waits behind the one its constructor starts; ours completes after the subscriptions.
        var opened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connect = redis.Value.ConnectionFactory
            ?? (async log => await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Value.Configuration, log));
        var options = new RedisOptions
        {
            Configuration = redis.Value.Configuration,
            ConnectionFactory = async log =>
            {
                await opened.Task;
                return await connect(log);
            },
        };
        _backplane = new RedisHubLifetimeManager<THub>(loggerFactory.CreateLogger<RedisHubLifetimeManager<THub>>(), Options.Create(options),
            protocols, globalHubOptions, hubOptions);
        _subscribed = SubscribedAsync(_backplane);
        opened.SetResult();
    }

    private static async Task SubscribedAsync(RedisHubLifetimeManager<THub> backplane)
    {
        try
        {
            // To a connection nobody has: it goes through the package's connection lock, and publishes nothing anyone reads.
            await backplane.SendConnectionAsync("-", "-", []);
        }
        catch (Exception)
        {
            // Redis is unreachable (or the package failed otherwise): later calls go ahead and meet the failure themselves,
            // as they would without this wait; it must never fail them all.
        }
    }

    public override async Task OnConnectedAsync(HubConnectionContext connection)
    {
        await _subscribed;
        await _local.OnConnectedAsync(connection);
        _local.TryGetOutbox(connection.ConnectionId, out var outbox);
        var proxy = new OutboxConnectionContext(connection, outbox);
        _proxies[connection.ConnectionId] = proxy;
        await _backplane.OnConnectedAsync(proxy);
    }

    public override async Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        if (_proxies.TryRemove(connection.ConnectionId, out var proxy))
        {
            await _backplane.OnDisconnectedAsync(proxy);
        }

        await _local.OnDisconnectedAsync(connection);
    }

    public override async Task AddToGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        await _subscribed;
        await _backplane.AddToGroupAsync(connectionId, groupName, cancellationToken);
    }

    public override async Task RemoveFromGroupAsync(string connectionId, string groupName, CancellationToken cancellationToken = default)
    {
        await _subscribed;
        await _backplane.RemoveFromGroupAsync(connectionId, groupName, cancellationToken);
    }

    public override Task SendAllAsync(string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane.SendAllAsync(methodName, args, cancellationToken);

    public override Task SendAllExceptAsync(string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds,
        CancellationToken cancellationToken = default) =>
        _backplane.SendAllExceptAsync(methodName, args, excludedConnectionIds, cancellationToken);

    public override Task SendConnectionAsync(string connectionId, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane.SendConnectionAsync(connectionId, methodName, args, cancellationToken);

    public override Task SendConnectionsAsync(IReadOnlyList<string> connectionIds, string methodName, object?[] args,
        CancellationToken cancellationToken = default) =>
        _backplane.SendConnectionsAsync(connectionIds, methodName, args, cancellationToken);

    public override Task SendGroupAsync(string groupName, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane.SendGroupAsync(groupName, methodName, args, cancellationToken);

    public override Task SendGroupsAsync(IReadOnlyList<string> groupNames, string methodName, object?[] args,
        CancellationToken cancellationToken = default) =>
        _backplane.SendGroupsAsync(groupNames, methodName, args, cancellationToken);

    public override Task SendGroupExceptAsync(string groupName, string methodName, object?[] args, IReadOnlyList<string> excludedConnectionIds,
        CancellationToken cancellationToken = default) =>
        _backplane.SendGroupExceptAsync(groupName, methodName, args, excludedConnectionIds, cancellationToken);

    public override Task SendUserAsync(string userId, string methodName, object?[] args, CancellationToken cancellationToken = default) =>
        _backplane.SendUserAsync(userId, methodName, args, cancellationToken);

    public override Task SendUsersAsync(IReadOnlyList<string> userIds, string methodName, object?[] args,
        CancellationToken cancellationToken = default) =>
        _backplane.SendUsersAsync(userIds, methodName, args, cancellationToken);

    public override async Task<T> InvokeConnectionAsync<T>(string connectionId, string methodName, object?[] args, CancellationToken cancellationToken)
    {
        await _subscribed;
        return await _backplane.InvokeConnectionAsync<T>(connectionId, methodName, args, cancellationToken);
    }

    public override Task SetConnectionResultAsync(string connectionId, Microsoft.AspNetCore.SignalR.Protocol.CompletionMessage result) =>
        _backplane.SetConnectionResultAsync(connectionId, result);

    public override bool TryGetReturnType(string invocationId, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Type? type) =>
        _backplane.TryGetReturnType(invocationId, out type);

    public void AddToLocalGroup(string connectionId, string groupName) => _local.AddToLocalGroup(connectionId, groupName);

    public void RemoveFromLocalGroup(string connectionId, string groupName) => _local.RemoveFromLocalGroup(connectionId, groupName);

    public void SendLocalGroup(string groupName, string methodName, object?[] args) => _local.SendLocalGroup(groupName, methodName, args);

    public void Dispose() => _backplane.Dispose();
}
