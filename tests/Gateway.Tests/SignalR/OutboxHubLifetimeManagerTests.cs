using Microsoft.Extensions.Configuration;
using OpencodeGateway.Delivery;

namespace Gateway.Tests.SignalR;

/// <summary>The lifetime manager specification on a single node (<see cref="OutboxHubLifetimeManager{THub}"/>).</summary>
public sealed class OutboxHubLifetimeManagerTests : HubLifetimeManagerSpec
{
    private protected override Task<ManagerNode> CreateNodeAsync(IConfiguration configuration) =>
        Task.FromResult(new ManagerNode(ManagerNode.BuildServices(configuration)));

    [Fact]
    public async Task On_a_single_node_local_groups_are_the_hubs_groups()
    {
        var node = await StartNodeAsync();
        var a = await ConnectAsync(node);
        var b = await ConnectAsync(node);
        var group = NewGroup();
        node.LocalGroups.AddToLocalGroup(a.Id, group);
        await node.Manager.AddToGroupAsync(b.Id, group);

        await node.Manager.SendGroupAsync(group, "Hello", ["1"]);
        node.LocalGroups.SendLocalGroup(group, "Hello", ["2"]);

        Assert.Equal(["1", "2"], await a.ReadArgumentsAsync(2));
        Assert.Equal(["1", "2"], await b.ReadArgumentsAsync(2));
    }
}
