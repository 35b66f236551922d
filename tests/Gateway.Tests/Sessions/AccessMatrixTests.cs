using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Sessions;

/// <summary>
/// User A owns sessions in workspace "team-a"; B is in "team-b"; C is a member of "team-a". B must not see, join,
/// prompt, abort, answer, change, archive or list A's sessions, nor receive their events; C may.
/// </summary>
public sealed class AccessMatrixTests : IAsyncLifetime
{
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
    }

    private async Task<string> CreateOverHttpAsync(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync("/api/sessions", body);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await ReadJsonAsync(response)).GetProperty("session").GetProperty("sessionId").GetString()!;
    }

    private static async Task<List<string>> ListIdsAsync(HttpClient client, string query = "")
    {
        var response = await client.GetAsync("/api/sessions" + query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await ReadJsonAsync(response)).GetProperty("items").EnumerateArray().Select(i => i.GetProperty("sessionId").GetString()!)];
    }

    [Fact]
    public async Task Http_endpoints_hide_a_session_from_other_users_and_show_it_to_its_workspace()
    {
        using var a = _host.HttpClient("alice", "team-a");
        using var b = _host.HttpClient("bob", "team-b");
        using var c = _host.HttpClient("carol", "team-a");
        var id = await CreateOverHttpAsync(a, new { title = "A's work", workspace = "team-a", tags = new[] { "x" }, metadata = new { ticket = "GW-1" } });
        var bobs = await CreateOverHttpAsync(b, new { title = "B's work" });

        // B: every endpoint answers as if the session did not exist
        await AssertProblemAsync(await b.GetAsync($"/api/sessions/{id}"), HttpStatusCode.NotFound, "session_not_found");
        await AssertProblemAsync(await b.PatchAsJsonAsync($"/api/sessions/{id}", new { title = "mine now" }), HttpStatusCode.NotFound, "session_not_found");
        await AssertProblemAsync(await b.DeleteAsync($"/api/sessions/{id}?deleteUpstream=true"), HttpStatusCode.NotFound, "session_not_found");
        await AssertProblemAsync(await b.PostAsJsonAsync($"/api/sessions/{id}/adopt", new { ownerId = "bob" }), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal([bobs], await ListIdsAsync(b));
        Assert.Empty(await ListIdsAsync(b, "?workspace=team-a"));
        Assert.True(_host.Upstream.HasSession(id));

        // A: the record joined with opencode's live info
        var details = await ReadJsonAsync(await a.GetAsync($"/api/sessions/{id}"));
        Assert.Equal("alice", details.GetProperty("session").GetProperty("ownerId").GetString());
        Assert.Equal("GW-1", details.GetProperty("session").GetProperty("metadata").GetProperty("ticket").GetString());
        Assert.Equal("A's work", details.GetProperty("info").GetProperty("title").GetString());
        Assert.Equal("idle", details.GetProperty("status").GetProperty("type").GetString());
        Assert.Equal(0.25, details.GetProperty("lastAssistantMessage").GetProperty("cost").GetDouble());
        Assert.Equal([id], await ListIdsAsync(a));

        // C, a member of team-a, sees and changes it
        Assert.Equal([id], await ListIdsAsync(c, "?workspace=team-a&tag=x"));
        var patched = await c.PatchAsJsonAsync($"/api/sessions/{id}", new { title = "Renamed", metadata = new { reviewer = "carol" } });
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var record = await ReadJsonAsync(patched);
        Assert.Equal("Renamed", record.GetProperty("title").GetString());
        Assert.Equal("GW-1", record.GetProperty("metadata").GetProperty("ticket").GetString());
        Assert.Equal("carol", record.GetProperty("metadata").GetProperty("reviewer").GetString());
        Assert.Equal("Renamed", (await ReadJsonAsync(await a.GetAsync($"/api/sessions/{id}"))).GetProperty("info").GetProperty("title").GetString());

        // B still cannot archive; A can, and deleteUpstream removes it on opencode
        var archived = await a.DeleteAsync($"/api/sessions/{id}?deleteUpstream=true");
        Assert.Equal(HttpStatusCode.OK, archived.StatusCode);
        Assert.False(_host.Upstream.HasSession(id));
        Assert.Empty(await ListIdsAsync(a));
        Assert.Equal([id], await ListIdsAsync(a, "?archived=true"));
    }

    [Fact]
    public async Task Http_requires_authentication_and_workspace_membership_to_create_in_a_workspace()
    {
        using var anonymous = _host.HttpClient(null);
        using var b = _host.HttpClient("bob", "team-b");

        await AssertProblemAsync(await anonymous.GetAsync("/api/sessions"), HttpStatusCode.Unauthorized, "unauthorized");
        await AssertProblemAsync(await anonymous.PostAsJsonAsync("/api/sessions", new { }), HttpStatusCode.Unauthorized, "unauthorized");
        await AssertProblemAsync(await b.PostAsJsonAsync("/api/sessions", new { workspace = "team-a" }), HttpStatusCode.Forbidden, "forbidden");
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task Hub_methods_refuse_other_users_and_fan_out_events_only_to_allowed_connections()
    {
        await using var a = await _host.ConnectHubAsync("alice", "team-a");
        await using var b = await _host.ConnectHubAsync("bob", "team-b");
        await using var c = await _host.ConnectHubAsync("carol", "team-a");

        var created = await a.InvokeAsync("CreateSession", new { title = "A's", workspace = "team-a", tags = new[] { "t" } });
        var id = created.GetProperty("id").GetString()!;
        var bobs = (await b.InvokeAsync("CreateSession", new { title = "B's" })).GetProperty("id").GetString()!;
        _host.Upstream.Permissions.Add(new System.Text.Json.Nodes.JsonObject { ["id"] = "per_1", ["sessionID"] = id });

        async Task AssertNotFound(Task call) => Assert.Equal("session_not_found", (await Assert.ThrowsAsync<HubException>(() => call)).GatewayCode());
        await AssertNotFound(b.InvokeAsync("Join", new { sessionId = id }));
        await AssertNotFound(b.InvokeAsync("Join", new { sessionId = id, upstream = "local" }));
        await AssertNotFound(b.InvokeAsync("Prompt", new { sessionId = id, text = "hi" }));
        await AssertNotFound(b.InvokeAsync("Abort", id));
        await AssertNotFound(b.InvokeAsync("ReplyPermission", new { sessionId = id, requestId = "per_1", reply = "once" }));
        await AssertNotFound(b.InvokeAsync("UpdateMetadata", new { sessionId = id, title = "stolen" }));
        Assert.DoesNotContain(id, _host.Upstream.Prompts);
        Assert.DoesNotContain(id, _host.Upstream.Aborts);
        Assert.Empty(_host.Upstream.PermissionReplies);
        var bList = await b.InvokeAsync("ListSessions", new { });
        Assert.Equal([bobs], bList.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("sessionId").GetString()));

        // A and C join A's session (C through the workspace); the snapshot carries the record
        var joined = await a.InvokeAsync("Join", new { sessionId = id });
        Assert.Equal("alice", joined.GetProperty("snapshot").GetProperty("metadata").GetProperty("ownerId").GetString());
        await c.InvokeAsync("Join", new { sessionId = id });
        await b.InvokeAsync("Join", new { sessionId = bobs });

        // A's event first, then B's: B's connection sees only its own; A and C see A's
        var aMessage = _host.Upstream.EmitMessage(id);
        var bMessage = _host.Upstream.EmitMessage(bobs);
        var toA = await a.NextAsync("SessionEvent", TimeSpan.FromSeconds(10));
        var toC = await c.NextAsync("SessionEvent", TimeSpan.FromSeconds(10));
        var toB = await b.NextAsync("SessionEvent", TimeSpan.FromSeconds(10));
        Assert.Equal(aMessage, toA?.GetProperty("messageId").GetString());
        Assert.Equal(aMessage, toC?.GetProperty("messageId").GetString());
        Assert.Equal(bMessage, toB?.GetProperty("messageId").GetString());
        Assert.Equal(bobs, toB?.GetProperty("sessionId").GetString());
        Assert.Null(await a.NextAsync("SessionEvent", TimeSpan.FromMilliseconds(300)));

        // the owner's calls go through
        await a.InvokeAsync("Prompt", new { sessionId = id, text = "hi" });
        await a.InvokeAsync("Abort", id);
        await c.InvokeAsync("ReplyPermission", new { sessionId = id, requestId = "per_1", reply = "once" });
        Assert.Contains(id, _host.Upstream.Prompts);
        Assert.Contains(id, _host.Upstream.Aborts);
        Assert.Contains("per_1", _host.Upstream.PermissionReplies);
        var updated = await c.InvokeAsync("UpdateMetadata", new { sessionId = id, tags = new[] { "reviewed" }, metadata = new { by = "carol" } });
        Assert.Equal("carol", updated.GetProperty("metadata").GetProperty("by").GetString());
        var cList = await c.InvokeAsync("ListSessions", new { workspace = "team-a", tag = "reviewed" });
        Assert.Equal([id], cList.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("sessionId").GetString()));
    }

    [Fact]
    public async Task The_hub_refuses_connections_without_a_valid_token()
    {
        await Assert.ThrowsAnyAsync<Exception>(() => _host.ConnectHubAsync(new GatewayHubClientOptions()));
        await Assert.ThrowsAnyAsync<Exception>(() => _host.ConnectHubAsync(new GatewayHubClientOptions { AccessToken = TestTokens.Mint("alice", signingKey: new string('k', 40)) }));
    }

    [Fact]
    public async Task Sessions_made_directly_on_opencode_are_invisible_until_an_admin_adopts_them()
    {
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings =
            {
                ["Gateway:Auth:ApiKeys:1:Name"] = "ops",
                ["Gateway:Auth:ApiKeys:1:Admin"] = "true",
                ["Gateway:Auth:ApiKeys:1:KeyHash"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("admin-key-123"))),
            },
        });
        var direct = host.Upstream.CreateSessionDirectly("made on opencode");
        using var alice = host.HttpClient("alice");
        using var admin = host.ApiKeyClient("admin-key-123");
        await using var aliceHub = await host.ConnectHubAsync("alice");

        Assert.Equal("session_not_found", (await Assert.ThrowsAsync<HubException>(() => aliceHub.InvokeAsync("Join", new { sessionId = direct }))).GatewayCode());
        await AssertProblemAsync(await alice.GetAsync($"/api/sessions/{direct}"), HttpStatusCode.NotFound, "session_not_found");
        await AssertProblemAsync(await alice.PostAsJsonAsync($"/api/sessions/{direct}/adopt", new { ownerId = "alice" }), HttpStatusCode.Forbidden, "forbidden");
        await AssertProblemAsync(await host.ApiKeyClient("wrong-key").GetAsync("/api/sessions"), HttpStatusCode.Unauthorized, "unauthorized");

        var adopted = await admin.PostAsJsonAsync($"/api/sessions/{direct}/adopt", new { ownerId = "alice", workspace = "team-a" });
        Assert.Equal(HttpStatusCode.Created, adopted.StatusCode);
        await AssertProblemAsync(await admin.PostAsJsonAsync($"/api/sessions/{direct}/adopt", new { ownerId = "bob" }), HttpStatusCode.Conflict, "conflict");

        var details = await ReadJsonAsync(await alice.GetAsync($"/api/sessions/{direct}"));
        Assert.Equal("made on opencode", details.GetProperty("session").GetProperty("title").GetString());
        await aliceHub.InvokeAsync("Join", new { sessionId = direct });
    }
}
