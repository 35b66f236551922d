using System.Reflection;
using Gateway.Tests.Support;
using Microsoft.AspNetCore.SignalR.StackExchangeRedis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Cluster;
using OpencodeGateway.Delivery;

namespace Gateway.Tests.SignalR;

/// <summary>
/// The lifetime manager specification on the cluster's manager (<see cref="RedisOutboxHubLifetimeManager{THub}"/>) over a
/// real Redis, plus scale-out (after aspnetcore's <c>ScaleoutHubLifetimeManagerTests</c>): the nodes of a test are
/// managers on one Redis under the test's own key prefix, each with its own connection, as separate processes are.
/// </summary>
[Collection(RedisCollection.Name)]
public sealed class RedisOutboxHubLifetimeManagerTests(RedisFixture redis) : HubLifetimeManagerSpec
{
    private string _keyPrefix = RedisFixture.NewKeyPrefix();
    private int _nodes;

    private protected override async Task<ManagerNode> CreateNodeAsync(IConfiguration configuration)
    {
        var connection = await RedisFixture.ConnectNodeAsync(RedisFixture.Cluster(redis.Endpoint, _keyPrefix, $"node{++_nodes}"));
        var services = ManagerNode.BuildServices(configuration, s =>
        {
            s.AddSingleton(connection);
            s.AddRedisOutboxBackplane(sp => sp.GetRequiredService<RedisConnection>().Keys.Backplane,
                sp => sp.GetRequiredService<RedisConnection>().ConnectedAsync());
        });
        return new ManagerNode(services, connection);
    }

    [Fact]
    public async Task A_node_takes_part_in_the_backplane_as_soon_as_it_exists()
    {
        var node1 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var group = NewGroup();

        // The race is one of microseconds: tried often enough to lose it nearly always without the fix.
        const int tries = 40;
        for (var i = 0; i < tries; i++)
        {
            // The moment the package has its Redis connection and has not subscribed to its channels yet: a node's
            // group command to another node must get that node's acknowledgement, ...
            var node = await StartNodeAsync();
            Assert.True(SpinWait.SpinUntil(() => HasRedisConnection(node), TimeSpan.FromSeconds(10)));
            await node.Manager.AddToGroupAsync(a.Id, group).WaitAsync(TimeSpan.FromSeconds(5));

            // ... and a node's first connection must receive what is sent to all.
            var other = await StartNodeAsync();
            Assert.True(SpinWait.SpinUntil(() => HasRedisConnection(other), TimeSpan.FromSeconds(10)));
            var b = await ConnectAsync(other);
            await node1.Manager.SendAllAsync("Hello", [$"{i}"]);
            Assert.Equal([$"{i}"], await b.ReadArgumentsAsync(1, timeout: TimeSpan.FromSeconds(5)));
        }

        await node1.Manager.SendGroupAsync(group, "Hello", ["in the group"]);
        Assert.Equal([.. Enumerable.Range(0, tries).Select(i => $"{i}"), "in the group"], await a.ReadArgumentsAsync(tries + 1));
    }

    /// <summary>Whether the package's manager behind the node has stored its Redis connection (it subscribes after that).</summary>
    private static bool HasRedisConnection(ManagerNode node)
    {
        const BindingFlags Private = BindingFlags.NonPublic | BindingFlags.Instance;
        var backplane = typeof(RedisOutboxHubLifetimeManager<SpecHub>).GetField("_backplane", Private)?.GetValue(node.Manager);
        var connection = typeof(RedisHubLifetimeManager<SpecHub>).GetField("_redisServerConnection", Private);
        Assert.True(backplane is not null && connection is not null,
            "the package's manager changed: find another way to catch the moment between its connection and its subscriptions");
        return connection.GetValue(backplane) is not null;
    }

    [Fact]
    public async Task Clusters_under_different_key_prefixes_do_not_see_each_others_messages()
    {
        var node = await StartNodeAsync();
        var alice = await ConnectAsync(node, "alice");
        var group = NewGroup();
        await node.Manager.AddToGroupAsync(alice.Id, group);
        _keyPrefix = RedisFixture.NewKeyPrefix(); // another cluster on the same Redis
        var other = await StartNodeAsync();
        var otherAlice = await ConnectAsync(other, "alice");
        await other.Manager.AddToGroupAsync(otherAlice.Id, group);

        await node.Manager.SendAllAsync("Hello", ["all"]);
        await node.Manager.SendUserAsync("alice", "Hello", ["user"]);
        await node.Manager.SendGroupAsync(group, "Hello", ["group"]);
        // Sent after them on the same channels: once these arrived, whatever the first cluster published there has too.
        await other.Manager.SendAllAsync("Hello", ["other all"]);
        await other.Manager.SendUserAsync("alice", "Hello", ["other user"]);
        await other.Manager.SendGroupAsync(group, "Hello", ["other group"]);

        Assert.Equal(["all", "group", "user"], (await alice.ReadArgumentsAsync(3)).Order());
        Assert.Equal(["other all", "other group", "other user"], (await otherAlice.ReadArgumentsAsync(3)).Order());
        Assert.Empty(alice.ReadAvailable());
    }

    [Fact]
    public async Task SendAll_from_one_node_reaches_the_connections_of_every_node()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var b = await ConnectAsync(node2);

        await node1.Manager.SendAllAsync("Hello", ["1"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["1"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task SendAll_from_another_node_skips_connections_that_disconnected()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var b = await ConnectAsync(node2);
        var c = await ConnectAsync(node2);
        await node2.Manager.OnDisconnectedAsync(b.Context);

        await node1.Manager.SendAllAsync("Hello", ["1"]);
        await node1.Manager.SendAllAsync("Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
        Assert.Equal(["1", "2"], await c.ReadArgumentsAsync(2));
        Assert.Empty(b.ReadAvailable());
    }

    [Fact]
    public async Task SendConnection_reaches_a_connection_of_another_node()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);

        await node2.Manager.SendConnectionAsync(a.Id, "Hello", ["1"]);
        await node2.Manager.SendConnectionsAsync([a.Id], "Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
    }

    [Fact]
    public async Task SendGroup_from_a_node_without_members_reaches_the_members_on_other_nodes()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var node3 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var b = await ConnectAsync(node2);
        var group = NewGroup();
        await node1.Manager.AddToGroupAsync(a.Id, group);
        await node2.Manager.AddToGroupAsync(b.Id, group);

        await node3.Manager.SendGroupAsync(group, "Hello", ["1"]);
        await node3.Manager.SendGroupExceptAsync(group, "Hello", ["2"], [a.Id]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
        Assert.Equal(["1", "2"], await b.ReadArgumentsAsync(2));
        Assert.Empty(a.ReadAvailable());
    }

    [Fact]
    public async Task AddToGroup_for_a_connection_of_another_node_makes_it_a_member_once()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var group = NewGroup();

        await node2.Manager.AddToGroupAsync(a.Id, group);
        await node1.Manager.AddToGroupAsync(a.Id, group);
        await node2.Manager.SendGroupAsync(group, "Hello", ["1"]);
        await node2.Manager.SendGroupAsync(group, "Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
    }

    [Fact]
    public async Task RemoveFromGroup_for_a_connection_of_another_node_stops_delivery_to_it()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var b = await ConnectAsync(node1);
        var group = NewGroup();
        await node1.Manager.AddToGroupAsync(a.Id, group);
        await node1.Manager.AddToGroupAsync(b.Id, group);
        await node2.Manager.SendGroupAsync(group, "Hello", ["1"]);
        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));

        await node2.Manager.RemoveFromGroupAsync(a.Id, group);
        await node2.Manager.SendGroupAsync(group, "Hello", ["2"]);
        await node2.Manager.SendGroupAsync(group, "Hello", ["3"]);

        Assert.Equal(["1", "2", "3"], await b.ReadArgumentsAsync(3));
        Assert.Empty(a.ReadAvailable());
    }

    [Fact]
    public async Task Removing_a_connection_of_another_node_from_a_group_it_is_not_in_does_nothing()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var group = NewGroup();

        await node2.Manager.RemoveFromGroupAsync(a.Id, group).WaitAsync(TimeSpan.FromSeconds(10));
        await node2.Manager.AddToGroupAsync(a.Id, group);
        await node2.Manager.SendGroupAsync(group, "Hello", ["1"]);

        Assert.Equal(["1"], await a.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task Disconnecting_removes_a_connection_from_groups_another_node_added_it_to()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var b = await ConnectAsync(node1);
        var group = NewGroup();
        await node2.Manager.AddToGroupAsync(a.Id, group);
        await node2.Manager.AddToGroupAsync(b.Id, group);

        await node1.Manager.OnDisconnectedAsync(a.Context);
        await node2.Manager.SendGroupAsync(group, "Hello", ["1"]);
        await node2.Manager.SendGroupAsync(group, "Hello", ["2"]);

        Assert.Equal(["1", "2"], await b.ReadArgumentsAsync(2));
        Assert.Empty(a.ReadAvailable());
    }

    [Fact]
    public async Task SendUser_reaches_the_users_connections_on_every_node()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var alice1 = await ConnectAsync(node1, "alice");
        var alice2 = await ConnectAsync(node2, "alice");
        var bob = await ConnectAsync(node2, "bob");

        await node1.Manager.SendUserAsync("alice", "Hello", ["1"]);
        await node1.Manager.SendUsersAsync(["bob"], "Hello", ["2"]);

        Assert.Equal(["1"], await alice1.ReadArgumentsAsync(1));
        Assert.Equal(["1"], await alice2.ReadArgumentsAsync(1));
        Assert.Equal(["2"], await bob.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task Local_group_sends_stay_on_their_node()
    {
        var node1 = await StartNodeAsync();
        var node2 = await StartNodeAsync();
        var a = await ConnectAsync(node1);
        var b = await ConnectAsync(node2);
        var group = NewGroup();
        node1.LocalGroups.AddToLocalGroup(a.Id, group);
        node2.LocalGroups.AddToLocalGroup(b.Id, group);

        node1.LocalGroups.SendLocalGroup(group, "Hello", ["1"]);
        // A send through the backplane after it: once b has that, whatever node 1 published before it has arrived.
        await node1.Manager.SendAllAsync("Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
        Assert.Equal(["2"], await b.ReadArgumentsAsync(1));
    }

    [Fact]
    public async Task A_stalled_connection_delays_nobody_on_its_node_or_another_and_alone_is_aborted()
    {
        var node1 = await StartNodeAsync(maxQueuedMessages: 16, maxQueuedBytes: 64 * 1024);
        var node2 = await StartNodeAsync(maxQueuedMessages: 16, maxQueuedBytes: 64 * 1024);
        var group = NewGroup();
        var stalled = await ConnectStalledAsync(node1, group);
        var healthy = new List<TestHubConnection>();
        foreach (var node in new[] { node1, node1, node1, node2, node2, node2 })
        {
            healthy.Add(await ConnectHealthyAsync(node, group));
        }

        // Node 1's channel handler writes to the stalled member too (the package alone would wait there for its flush).
        await SendPastAStalledMemberAsync(node2, group, stalled, healthy);
    }
}
