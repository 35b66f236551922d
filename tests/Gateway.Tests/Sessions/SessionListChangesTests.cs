using System.Net.Http.Json;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Sessions;

/// <summary>
/// <c>SessionListChanged</c>: every connection of everyone who may see a session (owner, workspace members, admins)
/// hears it created, renamed, tagged and archived, through the hub or <c>/api/sessions</c>; nobody else does.
/// </summary>
public sealed class SessionListChangesTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Every_tab_of_everyone_who_may_see_a_session_hears_each_change_and_nobody_else_does()
    {
        await using var gateway = await GatewayHost.StartAsync();
        await using var aliceTab1 = await gateway.ConnectHubAsync("alice", "team-a");
        await using var aliceTab2 = await gateway.ConnectHubAsync("alice", "team-a");
        await using var bob = await gateway.ConnectHubAsync("bob", "team-a");
        await using var carol = await gateway.ConnectHubAsync("carol", "team-b");
        await using var admin = await gateway.ConnectHubAsync(GatewayHost.AsAdmin());
        var lists = new[] { aliceTab1, aliceTab2, bob, carol, admin }.ToDictionary(c => c, SessionListModel.Of);
        SessionListModel[] seeing = [lists[aliceTab1], lists[aliceTab2], lists[bob], lists[admin]];

        var id = (await aliceTab1.CreateSessionAsync(new CreateSessionRequest("plan", Workspace: "team-a"))).GetProperty("id").GetString()!;
        foreach (var list in seeing)
        {
            await list.WaitForAsync(id, (kind, s) => kind == SessionListChangeKinds.Created && s.GetProperty("title").GetString() == "plan",
                Wait, "created");
        }

        // Renamed and tagged over HTTP by a member: the hub's users hear it all the same.
        using var bobHttp = gateway.HttpClient("bob", "team-a");
        (await bobHttp.PatchAsJsonAsync($"/api/sessions/{id}", new { title = "plan v2", tags = new[] { "q3" } })).EnsureSuccessStatusCode();
        foreach (var list in seeing)
        {
            await list.WaitForAsync(id, (kind, s) => kind == SessionListChangeKinds.Updated && s.GetProperty("title").GetString() == "plan v2"
                && s.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).SequenceEqual(["q3"]), Wait, "renamed and tagged");
        }

        using var aliceHttp = gateway.HttpClient("alice", "team-a");
        (await aliceHttp.DeleteAsync($"/api/sessions/{id}")).EnsureSuccessStatusCode();
        foreach (var list in seeing)
        {
            await list.WaitForAsync(id, (kind, s) => kind == SessionListChangeKinds.Archived
                && s.GetProperty("archivedAt").ValueKind == JsonValueKind.String, Wait, "archived");
        }

        // Archiving again changes nothing, so nobody hears of it. A personal session reaches its owner and admins only.
        var heardBefore = seeing.Select(l => l.Heard.Count).ToList();
        (await aliceHttp.DeleteAsync($"/api/sessions/{id}")).EnsureSuccessStatusCode();
        var personal = (await aliceTab2.CreateSessionAsync(new CreateSessionRequest("mine"))).GetProperty("id").GetString()!;
        foreach (var list in new[] { lists[aliceTab1], lists[aliceTab2], lists[admin] })
        {
            await list.WaitForAsync(personal, (kind, _) => kind == SessionListChangeKinds.Created, Wait, "personal session created");
        }

        // What Carol (another workspace) and Bob heard last is a session of their own, made after everything else:
        // Carol heard nothing before it, Bob nothing of the personal session, and nobody heard the repeated archive.
        var carols = (await carol.CreateSessionAsync(new CreateSessionRequest("carol's"))).GetProperty("id").GetString()!;
        var bobs = (await bob.CreateSessionAsync(new CreateSessionRequest("bob's"))).GetProperty("id").GetString()!;
        await lists[carol].WaitForAsync(carols, (kind, _) => kind == SessionListChangeKinds.Created, Wait, "carol's own session");
        await lists[bob].WaitForAsync(bobs, (kind, _) => kind == SessionListChangeKinds.Created, Wait, "bob's own session");
        Assert.Equal([(SessionListChangeKinds.Created, carols)], lists[carol].Heard);
        Assert.Equal([(SessionListChangeKinds.Created, bobs)], lists[bob].Heard.Skip(heardBefore[2]));
        Assert.All(seeing.Zip(heardBefore), x => Assert.DoesNotContain(x.First.Heard.Skip(x.Second), h => h.SessionId == id));
    }
}
