using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Contracts;
using OpencodeGateway.Hubs;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.SignalR;
using OpencodeGateway.Testing;

namespace Gateway.Tests.SignalR;

/// <summary>
/// The outbox lifetime manager behind the hub: concurrent group sends reach every member once and in each sender's
/// order (the first write of an idle connection happens on the sender's thread, the rest queue behind it), and
/// members that leave or disconnect stop receiving without disturbing the others.
/// </summary>
public sealed class OutboxHubLifetimeManagerTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<(string Group, GatewayHubClient[] Members)> JoinAsync(int members)
    {
        // Full-form connections: they are the members of the session's own group (compact ones have a group of their own).
        var full = GatewayHost.As("alice") with { Events = EventForms.Full };
        var owner = await _host.ConnectHubAsync(full);
        var id = (await owner.InvokeAsync("CreateSession", new { title = "fan-out" })).GetProperty("id").GetString()!;
        var clients = new List<GatewayHubClient> { owner };
        for (var i = 1; i < members; i++)
        {
            clients.Add(await _host.ConnectHubAsync(full));
        }

        foreach (var client in clients)
        {
            client.Record("Probe");
            await client.InvokeAsync("Join", new { sessionId = id });
        }

        return (SessionKey.GroupNameOf("local", id), [.. clients]);
    }

    private static async Task<List<(int Sender, int N)>> ReceiveAsync(GatewayHubClient client, int count)
    {
        var received = new List<(int, int)>();
        while (received.Count < count)
        {
            var e = await client.NextAsync("Probe", TimeSpan.FromSeconds(15));
            Assert.True(e is not null, $"only {received.Count} of {count} probes arrived");
            received.Add((e.Value.GetProperty("sender").GetInt32(), e.Value.GetProperty("n").GetInt32()));
        }

        return received;
    }

    [Fact]
    public async Task Concurrent_group_sends_reach_every_member_once_in_each_senders_order()
    {
        const int senders = 4, perSender = 300;
        var (group, members) = await JoinAsync(5);
        var hub = _host.Services.GetRequiredService<IHubContext<SessionHub>>();

        await Task.WhenAll(Enumerable.Range(0, senders).Select(s => Task.Run(async () =>
        {
            for (var n = 0; n < perSender; n++)
            {
                await hub.Clients.Group(group).SendAsync("Probe", new { sender = s, n });
            }
        })));

        foreach (var member in members)
        {
            var received = await ReceiveAsync(member, senders * perSender);
            foreach (var bySender in received.GroupBy(r => r.Sender))
            {
                Assert.Equal(Enumerable.Range(0, perSender), bySender.Select(r => r.N));
            }

            Assert.Null(await member.NextAsync("Probe", TimeSpan.FromMilliseconds(100)));
        }

        foreach (var member in members)
        {
            await member.DisposeAsync();
        }
    }

    [Fact]
    public async Task Members_that_leave_or_disconnect_stop_receiving_and_the_rest_carry_on()
    {
        var (group, members) = await JoinAsync(4);
        var hub = _host.Services.GetRequiredService<IHubContext<SessionHub>>();
        var sessionId = group.Split(':')[2];

        await members[1].InvokeAsync("Leave", sessionId);
        await members[2].DisposeAsync();
        var lifetime = (OutboxHubLifetimeManager<SessionHub>)_host.Services.GetRequiredService<HubLifetimeManager<SessionHub>>();
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (lifetime.ConnectionCount != 3) // the server noticed the closed connection
        {
            Assert.True(DateTime.UtcNow < deadline, $"{lifetime.ConnectionCount} connections, not 3");
            await Task.Delay(20);
        }
        await hub.Clients.Group(group).SendAsync("Probe", new { sender = 0, n = 1 });

        Assert.Equal(new[] { (0, 1) }, await ReceiveAsync(members[0], 1));
        Assert.Equal(new[] { (0, 1) }, await ReceiveAsync(members[3], 1));
        Assert.Null(await members[1].NextAsync("Probe", TimeSpan.FromMilliseconds(300)));

        // Joining again puts it back in the group.
        await members[1].InvokeAsync("Join", new { sessionId });
        await hub.Clients.Group(group).SendAsync("Probe", new { sender = 0, n = 2 });
        Assert.Equal(new[] { (0, 2) }, await ReceiveAsync(members[1], 1));
        foreach (var member in members.Where((_, i) => i != 2))
        {
            await member.DisposeAsync();
        }
    }
}
