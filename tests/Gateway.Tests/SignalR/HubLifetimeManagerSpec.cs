using OpencodeGateway.Testing;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery;
using Gateway.Tests.Support;

namespace Gateway.Tests.SignalR;

/// <summary>
/// The behaviour every lifetime manager of the gateway must have (after aspnetcore's <c>HubLifetimeManagerTestsBase</c>),
/// plus what the gateway adds: sends never wait on a client (a stalled one overflows its own bounded outbox and is
/// aborted alone), each connection receives in each sender's order, and node-local groups. Run against the single-node
/// <see cref="OutboxHubLifetimeManager{THub}"/> and the Redis-backed <see cref="RedisOutboxHubLifetimeManager{THub}"/>.
/// </summary>
/// <remarks>
/// Deliveries through Redis are asynchronous, so a test that expects a connection to receive nothing sends a second
/// message along the same path (the same channel, handled in order) and checks that it is the first one to arrive, or
/// that nothing is there once another member received it.
/// </remarks>
public abstract class HubLifetimeManagerSpec : IAsyncLifetime
{
    private readonly List<ManagerNode> _nodes = [];
    private readonly List<TestHubConnection> _connections = [];

    /// <summary>A new node: one gateway process's manager (nodes of one test share a backplane when there is one).</summary>
    private protected abstract Task<ManagerNode> CreateNodeAsync(IConfiguration configuration);

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
    }

    private protected async Task<ManagerNode> StartNodeAsync(int maxQueuedMessages = 10_000, long maxQueuedBytes = 4 * 1024 * 1024)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{OutboxOptions.SectionName}:MaxQueuedMessages"] = maxQueuedMessages.ToString(),
            [$"{OutboxOptions.SectionName}:MaxQueuedBytes"] = maxQueuedBytes.ToString(),
        }).Build();
        var node = await CreateNodeAsync(configuration);
        _nodes.Add(node);
        return node;
    }

    private protected async Task<TestHubConnection> ConnectAsync(ManagerNode node, string? userId = null, long pauseWriterThreshold = 64 * 1024)
    {
        var connection = new TestHubConnection(userId, pauseWriterThreshold);
        _connections.Add(connection);
        await node.Manager.OnConnectedAsync(connection.Context);
        return connection;
    }

    private protected static string NewGroup() => "g-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task SendAll_reaches_every_connection()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);

        await node.Manager.SendAllAsync("Hello", ["World"]);

        Assert.Equal(["World"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["World"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendAll_skips_disconnected_connections()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        await node.Manager.OnDisconnectedAsync(b.Context);

        await node.Manager.SendAllAsync("Hello", ["1"]);
        await node.Manager.SendAllAsync("Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
        Assert.Empty(b.ReadAvailable());
    }

    [Fact]
    public async Task SendAllExcept_skips_the_excluded_connections()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var c = await ConnectAsync(node);

        await node.Manager.SendAllExceptAsync("Hello", ["1"], [b.Id]);
        await node.Manager.SendAllAsync("Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
        Assert.Equal(["1", "2"], await c.ReadArgumentsAsync(2));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendConnection_reaches_that_connection_only()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);

        await node.Manager.SendConnectionAsync(a.Id, "Hello", ["1"]);
        await node.Manager.SendConnectionAsync(b.Id, "Hello", ["2"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
        Assert.Empty(a.ReadAvailable());
    }

    [Fact]
    public async Task SendConnections_reaches_the_listed_connections_only()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var c = await ConnectAsync(node);

        await node.Manager.SendConnectionsAsync([a.Id, c.Id], "Hello", ["1"]);
        await node.Manager.SendConnectionsAsync([b.Id], "Hello", ["2"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["1"], await c.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendGroup_reaches_the_members_only_and_a_later_member_only_later_messages()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var group = NewGroup();
        await node.Manager.AddToGroupAsync(a.Id, group);

        await node.Manager.SendGroupAsync(group, "Hello", ["1"]);
        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        await node.Manager.AddToGroupAsync(b.Id, group);
        await node.Manager.SendGroupAsync(group, "Hello", ["2"]);

        Assert.Equal(["2"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendGroups_reaches_the_members_of_each_listed_group_only()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var c = await ConnectAsync(node);
        string[] groups = [NewGroup(), NewGroup(), NewGroup()];
        await node.Manager.AddToGroupAsync(a.Id, groups[0]);
        await node.Manager.AddToGroupAsync(b.Id, groups[1]);
        await node.Manager.AddToGroupAsync(c.Id, groups[2]);

        await node.Manager.SendGroupsAsync([groups[0], groups[2]], "Hello", ["1"]);
        await node.Manager.SendGroupsAsync([groups[1]], "Hello", ["2"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["1"], await c.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendGroupExcept_skips_the_excluded_members()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var group = NewGroup();
        await node.Manager.AddToGroupAsync(a.Id, group);
        await node.Manager.AddToGroupAsync(b.Id, group);

        await node.Manager.SendGroupExceptAsync(group, "Hello", ["1"], [b.Id]);
        await node.Manager.SendGroupAsync(group, "Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendUser_reaches_every_connection_of_that_user_only()
    {
        var node = await StartNodeAsync();
        var alice1 = await ConnectAsync(node, "alice");
        var alice2 = await ConnectAsync(node, "alice");
        var bob = await ConnectAsync(node, "bob");

        await node.Manager.SendUserAsync("alice", "Hello", ["1"]);
        await node.Manager.SendUserAsync("bob", "Hello", ["2"]);

        Assert.Equal(["1"], await alice1.ReadArgumentsAsync(1));
        Assert.Equal(["1"], await alice2.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await bob.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendUsers_reaches_the_connections_of_the_listed_users_only()
    {
        var node = await StartNodeAsync();
        var alice = await ConnectAsync(node, "alice");
        var bob = await ConnectAsync(node, "bob");
        var carol = await ConnectAsync(node, "carol");
        var anonymous = await ConnectAsync(node);

        await node.Manager.SendUsersAsync(["alice", "carol"], "Hello", ["1"]);
        await node.Manager.SendUsersAsync(["bob"], "Hello", ["2"]);
        await node.Manager.SendConnectionAsync(anonymous.Id, "Hello", ["3"]);

        Assert.Equal(["1"], await alice.ReadArgumentsAsync(1));
        Assert.Equal(["1"], await carol.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await bob.ReadArgumentsAsync(1));
        Assert.Equal(["3"], await anonymous.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task Adding_a_member_twice_delivers_each_message_once()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var group = NewGroup();
        await node.Manager.AddToGroupAsync(a.Id, group);
        await node.Manager.AddToGroupAsync(a.Id, group);

        await node.Manager.SendGroupAsync(group, "Hello", ["1"]);
        await node.Manager.SendGroupAsync(group, "Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
    }

    [Fact]
    public async Task RemoveFromGroup_stops_delivery_to_that_member_and_the_others_carry_on()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var group = NewGroup();
        await node.Manager.AddToGroupAsync(a.Id, group);
        await node.Manager.AddToGroupAsync(b.Id, group);
        await node.Manager.SendGroupAsync(group, "Hello", ["1"]);
        Assert.Equal(["1"], await b.ReadArgumentsAsync(1));

        await node.Manager.RemoveFromGroupAsync(b.Id, group);
        await node.Manager.SendGroupAsync(group, "Hello", ["2"]);
        await node.Manager.SendGroupAsync(group, "Hello", ["3"]);

        Assert.Equal(["1", "2", "3"], await a.ReadArgumentsAsync(3));
        Assert.Empty(b.ReadAvailable());

        // Added again, it receives again.
        await node.Manager.AddToGroupAsync(b.Id, group);
        await node.Manager.SendGroupAsync(group, "Hello", ["4"]);
        Assert.Equal(["4"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task Removing_a_connection_from_a_group_it_is_not_in_does_nothing()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var group = NewGroup();

        await node.Manager.RemoveFromGroupAsync(a.Id, group);
        await node.Manager.AddToGroupAsync(a.Id, group);
        await node.Manager.SendGroupAsync(group, "Hello", ["1"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task Disconnecting_removes_a_connection_from_its_groups()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        string[] groups = [NewGroup(), NewGroup()];
        foreach (var group in groups)
        {
            await node.Manager.AddToGroupAsync(a.Id, group);
            await node.Manager.AddToGroupAsync(b.Id, group);
        }

        await node.Manager.OnDisconnectedAsync(b.Context);
        foreach (var group in groups)
        {
            await node.Manager.SendGroupAsync(group, "Hello", [group + ":1"]);
            await node.Manager.SendGroupAsync(group, "Hello", [group + ":2"]);
        }

        var received = await a.ReadArgumentsAsync(4);
        Assert.Equal(groups.SelectMany(g => new[] { g + ":1", g + ":2" }).Order(), received.Order());
        Assert.Empty(b.ReadAvailable());
    }

    [Fact]
    public async Task Sends_to_unknown_connections_groups_and_users_complete_and_reach_nobody()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node, "alice");

        await node.Manager.SendConnectionAsync("no-such-connection", "Hello", ["x"]);
        await node.Manager.SendConnectionsAsync(["no-such-connection"], "Hello", ["x"]);
        await node.Manager.SendGroupAsync(NewGroup(), "Hello", ["x"]);
        await node.Manager.SendGroupsAsync([NewGroup()], "Hello", ["x"]);
        await node.Manager.SendUserAsync("nobody", "Hello", ["x"]);
        await node.Manager.AddToGroupAsync(a.Id, "a-group");
        await node.Manager.SendConnectionAsync(a.Id, "Hello", ["1"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task Concurrent_senders_reach_every_member_once_in_each_senders_order()
    {
        const int senders = 4, perSender = 200;
        var node = await StartNodeAsync();
        var group = NewGroup();
        var members = new List<TestHubConnection>();
        for (var i = 0; i < 3; i++)
        {
            var member = await ConnectAsync(node, pauseWriterThreshold: 4 * 1024 * 1024);
            await node.Manager.AddToGroupAsync(member.Id, group);
            members.Add(member);
        }

        await Task.WhenAll(Enumerable.Range(0, senders).Select(s => Task.Run(async () =>
        {
            for (var n = 0; n < perSender; n++)
            {
                await node.Manager.SendGroupAsync(group, "Hello", [$"{s}:{n}"]);
            }
        })));

        foreach (var member in members)
        {
            var received = (await member.ReadArgumentsAsync(senders * perSender)).Select(r => r.Split(':')).ToList();
            foreach (var bySender in received.GroupBy(r => r[0]))
            {
                Assert.Equal(Enumerable.Range(0, perSender), bySender.Select(r => int.Parse(r[1])));
            }

            Assert.Equal(senders, received.Select(r => r[0]).Distinct().Count());
        }
    }

    [Fact]
    public async Task A_stalled_connection_is_aborted_at_its_outbox_bound_and_never_delays_the_others()
    {
        var node = await StartNodeAsync(maxQueuedMessages: 16, maxQueuedBytes: 64 * 1024);
        using var dropped = new MetricCollector<long>(node.Services.GetRequiredService<IMeterFactory>(), GatewayMetrics.MeterName,
            "gateway.connections.slow_dropped");
        var group = NewGroup();
        var stalled = await ConnectStalledAsync(node, group);
        var healthy = new List<TestHubConnection>();
        for (var i = 0; i < 3; i++)
        {
            healthy.Add(await ConnectHealthyAsync(node, group));
        }

        await SendPastAStalledMemberAsync(node, group, stalled, healthy);

        Assert.Equal(1, dropped.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [Fact]
    public async Task The_outbox_instruments_count_what_connections_were_handed_and_what_waits_for_them()
    {
        var node = await StartNodeAsync();
        var meters = node.Services.GetRequiredService<IMeterFactory>();
        using var handed = new MetricCollector<long>(meters, GatewayMetrics.MeterName, "gateway.outbox.messages");
        using var queued = new MetricCollector<long>(meters, GatewayMetrics.MeterName, "gateway.outbox.queue.length");
        using var queuedBytes = new MetricCollector<long>(meters, GatewayMetrics.MeterName, "gateway.outbox.queue.size");
        using var fullest = new MetricCollector<long>(meters, GatewayMetrics.MeterName, "gateway.outbox.queue.max_size");
        long Read(MetricCollector<long> collector)
        {
            collector.RecordObservableInstruments();
            return collector.LastMeasurement!.Value;
        }

        var group = NewGroup();
        var stalled = await ConnectStalledAsync(node, group);
        var healthy = await ConnectHealthyAsync(node, group);
        var payload = new string('x', 4000);
        for (var n = 0; n < 20; n++)
        {
            await node.Manager.SendGroupAsync(group, "Hello", [payload]);
        }

        await healthy.ReadArgumentsAsync(20);
        await Eventually.HoldsAsync(() => Read(handed) == 40, "both members handed the 20 messages");
        // The stalled member's transport took 16 KB: the rest waits in its outbox, the healthy member's is empty.
        Assert.InRange(Read(queued), 10, 19);
        Assert.InRange(Read(queuedBytes), Read(queued) * 4000, Read(queued) * 4200);
        Assert.Equal(Read(queuedBytes), Read(fullest));

        await node.Manager.OnDisconnectedAsync(stalled.Context);

        Assert.Equal(0, Read(queued));
        Assert.Equal(0, Read(queuedBytes));
        Assert.Equal(0, Read(fullest));
        Assert.Equal(40, Read(handed)); // a closed connection's messages stay counted
    }

    /// <summary>A member that never reads: its transport stops taking bytes at 16 KB, as a full TCP window does.</summary>
    private protected async Task<TestHubConnection> ConnectStalledAsync(ManagerNode node, string group)
    {
        var stalled = await ConnectAsync(node, pauseWriterThreshold: 16 * 1024);
        await node.Manager.AddToGroupAsync(stalled.Id, group);
        return stalled;
    }

    /// <summary>A member whose transport takes whatever comes (its reader may lag; its outbox never fills).</summary>
    private protected async Task<TestHubConnection> ConnectHealthyAsync(ManagerNode node, string group)
    {
        var member = await ConnectAsync(node, pauseWriterThreshold: 4 * 1024 * 1024);
        await node.Manager.AddToGroupAsync(member.Id, group);
        return member;
    }

    /// <summary>
    /// Sends 200 messages of 4 KB to the group through <paramref name="sender"/>: every send completes although one member
    /// takes nothing, every healthy member receives all of them in order, and the stalled one alone is aborted.
    /// </summary>
    private protected static async Task SendPastAStalledMemberAsync(ManagerNode sender, string group, TestHubConnection stalled,
        IReadOnlyList<TestHubConnection> healthy)
    {
        const int messages = 200;
        var payload = new string('x', 4000);
        await Task.Run(async () =>
        {
            for (var n = 0; n < messages; n++)
            {
                await sender.Manager.SendGroupAsync(group, "Hello", [$"{n}:{payload}"]);
            }
        }).WaitAsync(TimeSpan.FromSeconds(10));

        foreach (var member in healthy)
        {
            var received = await member.ReadArgumentsAsync(messages);
            Assert.Equal(Enumerable.Range(0, messages), received.Select(r => int.Parse(r[..r.IndexOf(':')])));
            Assert.False(member.Context.ConnectionAborted.IsCancellationRequested);
        }

        await Eventually.HoldsAsync(() => stalled.Context.ConnectionAborted.IsCancellationRequested, "the stalled connection is aborted");
    }

    [Fact]
    public async Task Local_groups_deliver_to_their_members_until_they_leave_or_disconnect()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var c = await ConnectAsync(node);
        var group = NewGroup();
        node.LocalGroups.AddToLocalGroup(a.Id, group);
        node.LocalGroups.AddToLocalGroup(b.Id, group);
        node.LocalGroups.AddToLocalGroup(b.Id, group);

        node.LocalGroups.SendLocalGroup(group, "Hello", ["1"]);
        node.LocalGroups.RemoveFromLocalGroup(a.Id, group);
        node.LocalGroups.SendLocalGroup(group, "Hello", ["2"]);
        await node.Manager.OnDisconnectedAsync(b.Context);
        node.LocalGroups.SendLocalGroup(group, "Hello", ["3"]);
        node.LocalGroups.AddToLocalGroup(c.Id, group);
        node.LocalGroups.SendLocalGroup(group, "Hello", ["4"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["1", "2"], await b.ReadArgumentsAsync(2));
        Assert.Equal(["4"], await c.ReadArgumentsAsync(1));
        Assert.Empty(a.ReadAvailable());
        Assert.Empty(b.ReadAvailable());
    }
}

/// <summary>One node's lifetime manager with the services it was built from.</summary>
internal sealed class ManagerNode(ServiceProvider services, IAsyncDisposable? resources = null) : IAsyncDisposable
{
    public IServiceProvider Services => services;

    public HubLifetimeManager<SpecHub> Manager { get; } = services.GetRequiredService<HubLifetimeManager<SpecHub>>();

    public ILocalGroupManager<SpecHub> LocalGroups => (ILocalGroupManager<SpecHub>)Manager;

    /// <summary>The gateway's SignalR services with the outbox manager; <paramref name="configure"/> adds what a node adds.</summary>
    public static ServiceProvider BuildServices(IConfiguration configuration, Action<IServiceCollection>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMetrics();
        services.AddSingleton<GatewayMetrics>();
        services.AddSignalR().AddOutboxLifetimeManager(configuration);
        configure?.Invoke(services);
        return services.BuildServiceProvider();
    }

    public async ValueTask DisposeAsync()
    {
        await services.DisposeAsync();
        if (resources is not null)
        {
            await resources.DisposeAsync();
        }
    }
}
