using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Sessions;

/// <summary>
/// Subagents' sessions (opencode's <c>task</c> tool) on a fake opencode: visible to exactly those who may see their
/// root (recorded on first sight with the root's owner and workspace, left out of lists), their requests on the root's
/// stream even when the gateway never saw them created, and answered through the root by hub and HTTP.
/// </summary>
public sealed class SubagentSessionTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private GatewayHost _host = null!;

    public async Task InitializeAsync() => _host = await GatewayHost.StartAsync();

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private FakeOpencode Upstream => _host.Upstream;

    private async Task<string> CreateAsync(string user, string? workspace = null)
    {
        await using var connection = await _host.ConnectHubAsync(user, workspace is null ? [] : [workspace]);
        return (await connection.CreateSessionAsync(new CreateSessionRequest("run", Workspace: workspace))).GetProperty("id").GetString()!;
    }

    [Fact]
    public async Task A_child_belongs_to_whoever_may_see_its_root_and_stays_out_of_lists()
    {
        var root = await CreateAsync("alice", "team-a");
        Upstream.AddChildSession("ses_child1", root);
        Upstream.AddChildSession("ses_grandchild1", "ses_child1");
        Upstream.AddChildSession("ses_orphan1", "ses_nobody1");

        await using var bob = await _host.ConnectHubAsync("bob");
        foreach (var id in new[] { "ses_child1", "ses_grandchild1" })
        {
            Assert.Equal("session_not_found", (await Assert.ThrowsAsync<HubException>(() => bob.JoinAsync(new JoinRequest(id)))).GatewayCode());
        }

        // A member of the root's workspace may see its descendants, any depth.
        await using var carol = await _host.ConnectHubAsync("carol", "team-a");
        var join = await carol.JoinAsync(new JoinRequest("ses_grandchild1"));
        Assert.False(join.GetProperty("recovered").GetBoolean());
        await using var alice = await _host.ConnectHubAsync("alice");
        await alice.JoinAsync(new JoinRequest("ses_child1"));
        Assert.Equal("session_not_found", (await Assert.ThrowsAsync<HubException>(() => alice.JoinAsync(new JoinRequest("ses_orphan1")))).GatewayCode());

        using var http = _host.HttpClient("alice");
        var record = JsonDocument.Parse(await http.GetStringAsync("/api/sessions/ses_grandchild1")).RootElement.GetProperty("session");
        Assert.Equal(("alice", "team-a", "ses_child1"), (record.GetProperty("ownerId").GetString(), record.GetProperty("workspace").GetString(),
            record.GetProperty("parentId").GetString()));
        var listed = JsonDocument.Parse(await http.GetStringAsync("/api/sessions")).RootElement.GetProperty("items").EnumerateArray()
            .Select(i => i.GetProperty("sessionId").GetString()).ToList();
        Assert.Equal([root], listed);

        // The root's snapshot lists its descendants, oldest first.
        var snapshot = (await alice.JoinAsync(new JoinRequest(root))).GetProperty("snapshot");
        Assert.Equal(["ses_child1", "ses_grandchild1"], snapshot.GetProperty("children").EnumerateArray().Select(c => c.GetProperty("id").GetString()).Order());
    }

    [Fact]
    public async Task A_childs_request_reaches_the_root_even_when_the_gateway_never_saw_the_child_created_and_is_answered_there()
    {
        var root = await CreateAsync("alice");
        Upstream.AddChildSession("ses_child2", root);
        await using var watcher = await ObservedSession.StartAsync(_host.HubUrl, root);
        var permission = new { id = "per_child1", sessionID = "ses_child2", permission = "bash", patterns = new[] { "ls" } };
        Upstream.Permissions.Add(System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.Serialize(permission))!.AsObject());
        // Only the request: the child's parent is looked up at opencode.
        Upstream.Emit("permission.asked", permission);
        await watcher.WaitUntilAsync(w => w.View.Permissions.Ids().Contains("per_child1"), Wait, "the child's request on the root");
        Assert.Equal([("permission.asked", "ses_child2")], watcher.Read(w => w.FromDescendants));

        await watcher.Client.ReplyPermissionAsync(new PermissionReplyRequest(root, "per_child1", "always"));
        Assert.Equal(["per_child1"], Upstream.PermissionReplies);

        // Questions: by hub (root's id) and by HTTP (the child's id); unknown ones and other runs' are refused.
        Upstream.Questions.Add(System.Text.Json.Nodes.JsonNode.Parse("""{"id":"que_c1","sessionID":"ses_child2","questions":[{"question":"?","header":"h","options":[]}]}""")!.AsObject());
        Upstream.Questions.Add(System.Text.Json.Nodes.JsonNode.Parse("""{"id":"que_c2","sessionID":"ses_child2","questions":[{"question":"?","header":"h","options":[]}]}""")!.AsObject());
        Upstream.Questions.Add(System.Text.Json.Nodes.JsonNode.Parse("""{"id":"que_other","sessionID":"ses_elsewhere","questions":[]}""")!.AsObject());
        await watcher.Client.ReplyQuestionAsync(new QuestionReplyRequest(root, "que_c1", [["yes", "typed text"]]));
        using var http = _host.HttpClient("alice");
        Assert.Equal(HttpStatusCode.NoContent, (await http.PostAsync($"/api/sessions/ses_child2/questions/que_c2/reject", null)).StatusCode);
        Assert.Equal(["reply que_c1 [[\"yes\",\"typed text\"]]", "reject que_c2"], Upstream.QuestionAnswers);
        var other = await http.PostAsJsonAsync($"/api/sessions/{root}/questions/que_other/reply", new { answers = new[] { new[] { "x" } } });
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal("question_not_found", JsonDocument.Parse(await other.Content.ReadAsStringAsync()).RootElement.GetProperty("code").GetString());
        var badId = await http.PostAsJsonAsync($"/api/sessions/{root}/questions/per_1/reply", new { answers = new[] { new[] { "x" } } });
        Assert.Equal(HttpStatusCode.BadRequest, badId.StatusCode);
        var noAnswers = await http.PostAsJsonAsync($"/api/sessions/{root}/questions/que_c1/reply", new { answers = new[] { new[] { "" } } });
        Assert.Equal(HttpStatusCode.BadRequest, noAnswers.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent,
            (await http.PostAsJsonAsync($"/api/sessions/{root}/permissions/per_child1", new { reply = "once" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound,
            (await http.PostAsJsonAsync($"/api/sessions/{root}/permissions/per_gone1", new { reply = "once" })).StatusCode);
    }

    [Fact]
    public async Task Messages_are_paged_over_http_from_a_snapshots_cursor()
    {
        var messages = Enumerable.Range(1, 45).Select(i => JsonSerializer.SerializeToElement(new
        {
            info = new { id = $"msg_{i:D4}", sessionID = "ses_paged1", role = i % 2 == 1 ? "user" : "assistant", time = new { created = 1_000 + i } },
            parts = Array.Empty<object>(),
        })).ToArray();
        Upstream.AddSession("ses_paged1", messages);
        await using var admin = await GatewayHubClient.ConnectAsync(_host.HubUrl, GatewayHost.AsAdmin());
        var snapshot = (await admin.JoinAsync(new JoinRequest("ses_paged1"))).GetProperty("snapshot");
        Assert.Equal(20, snapshot.GetProperty("messages").GetArrayLength());
        var cursor = snapshot.GetProperty("earlier").GetProperty("cursor").GetString()!;
        using var http = _host.ApiKeyClient(GatewayHost.AdminApiKey);
        var ids = new List<string>();
        while (cursor is not null)
        {
            var page = JsonDocument.Parse(await http.GetStringAsync($"/api/sessions/ses_paged1/messages?before={cursor}&limit=10")).RootElement;
            ids.InsertRange(0, page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("info").GetProperty("id").GetString()!));
            cursor = page.TryGetProperty("earlier", out var earlier) && earlier.ValueKind == JsonValueKind.Object
                ? earlier.GetProperty("cursor").GetString() : null;
        }

        Assert.Equal(Enumerable.Range(1, 25).Select(i => $"msg_{i:D4}"), ids);
        var missing = await http.GetAsync("/api/sessions/ses_paged1/messages");
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.GetAsync("/api/sessions/ses_paged1/messages?before=zzz")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest,
            (await http.GetAsync($"/api/sessions/ses_paged1/messages?before={snapshot.GetProperty("earlier").GetProperty("cursor").GetString()}&limit=101")).StatusCode);
    }
}
