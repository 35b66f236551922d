using System.Net.Http.Json;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Sessions;

/// <summary>
/// <c>SessionListChanged</c>: every connection of everyone who may see a session (owner, workspace members, admins)
/// hears it created, renamed, tagged and archived, through the hub or <c>/api/sessions</c>; nobody else does. Each tab
/// keeps its list with Gateway.Client's <see cref="GatewaySessionList"/>.
/// </summary>
public sealed class SessionListChangesTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private sealed record Tab(GatewayClient Client, GatewaySessionList List, HeardChanges Heard) : IAsyncDisposable
    {
        public static async Task<Tab> OpenAsync(GatewayHost gateway, GatewayHubClientOptions options)
        {
            var client = await options.StartClientAsync(gateway.HubUrl);
            var heard = new HeardChanges(client);
            return new Tab(client, await client.WatchSessionListAsync(), heard);
        }

        public SessionMetadata? Find(string sessionId) => List.Sessions.FirstOrDefault(s => s.SessionId == sessionId);

        public async ValueTask DisposeAsync()
        {
            List.Dispose();
            await Client.DisposeAsync();
        }
    }

    [Fact]
    public async Task Every_tab_of_everyone_who_may_see_a_session_hears_each_change_and_nobody_else_does()
    {
        await using var gateway = await GatewayHost.StartAsync();
        await using var aliceTab1 = await Tab.OpenAsync(gateway, GatewayHost.As("alice", "team-a"));
        await using var aliceTab2 = await Tab.OpenAsync(gateway, GatewayHost.As("alice", "team-a"));
        await using var bob = await Tab.OpenAsync(gateway, GatewayHost.As("bob", "team-a"));
        await using var carol = await Tab.OpenAsync(gateway, GatewayHost.As("carol", "team-b"));
        await using var admin = await Tab.OpenAsync(gateway, GatewayHost.AsAdmin());
        Tab[] seeing = [aliceTab1, aliceTab2, bob, admin];

        var id = (await aliceTab1.Client.CreateSessionAsync(new CreateSessionRequest("plan", Workspace: "team-a"))).GetProperty("id").GetString()!;
        foreach (var tab in seeing)
        {
            await Eventually.HoldsAsync(() => tab.Find(id)?.Title == "plan", "created", Wait);
        }

        // Renamed and tagged over HTTP by a member: the hub's users hear it all the same.
        using var bobHttp = gateway.HttpClient("bob", "team-a");
        (await bobHttp.PatchAsJsonAsync($"/api/sessions/{id}", new { title = "plan v2", tags = new[] { "q3" } })).EnsureSuccessStatusCode();
        foreach (var tab in seeing)
        {
            await Eventually.HoldsAsync(() => tab.Find(id) is { Title: "plan v2" } s && s.Tags.SequenceEqual(["q3"]), "renamed and tagged", Wait);
        }

        // Archived: it leaves the lists of active sessions.
        using var aliceHttp = gateway.HttpClient("alice", "team-a");
        (await aliceHttp.DeleteAsync($"/api/sessions/{id}")).EnsureSuccessStatusCode();
        foreach (var tab in seeing)
        {
            await Eventually.HoldsAsync(() => tab.Find(id) is null
                && tab.Heard.Any(id, c => c.Kind == SessionListChangeKinds.Archived && c.Session.ArchivedAt is not null), "archived", Wait);
        }

        // Archiving again changes nothing, so nobody hears of it. A personal session reaches its owner and admins only.
        var heardBefore = seeing.Select(t => t.Heard.Heard.Count).ToList();
        (await aliceHttp.DeleteAsync($"/api/sessions/{id}")).EnsureSuccessStatusCode();
        var personal = (await aliceTab2.Client.CreateSessionAsync(new CreateSessionRequest("mine"))).GetProperty("id").GetString()!;
        foreach (var tab in new[] { aliceTab1, aliceTab2, admin })
        {
            await Eventually.HoldsAsync(() => tab.Find(personal) is not null, "personal session created", Wait);
        }

        // What Carol (another workspace) and Bob heard last is a session of their own, made after everything else:
        // Carol heard nothing before it, Bob nothing of the personal session, and nobody heard the repeated archive.
        var carols = (await carol.Client.CreateSessionAsync(new CreateSessionRequest("carol's"))).GetProperty("id").GetString()!;
        var bobs = (await bob.Client.CreateSessionAsync(new CreateSessionRequest("bob's"))).GetProperty("id").GetString()!;
        await Eventually.HoldsAsync(() => carol.Find(carols) is not null, "carol's own session", Wait);
        await Eventually.HoldsAsync(() => bob.Find(bobs) is not null, "bob's own session", Wait);
        Assert.Equal([(SessionListChangeKinds.Created, carols)], carol.Heard.Heard);
        Assert.Equal([(SessionListChangeKinds.Created, bobs)], bob.Heard.Heard.Skip(heardBefore[2]));
        Assert.All(seeing.Zip(heardBefore), x => Assert.DoesNotContain(x.First.Heard.Heard.Skip(x.Second), h => h.SessionId == id));
        Assert.All(seeing.Append(carol), t => Assert.Empty(t.Heard.Violations));
        // The lists hold what the gateway lists.
        Assert.Equal((await aliceTab1.Client.ListSessionsAsync()).Items.Select(s => s.SessionId), aliceTab1.List.Sessions.Select(s => s.SessionId));
    }
}
