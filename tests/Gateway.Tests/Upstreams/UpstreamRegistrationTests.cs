using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Data.Sqlite;
using OpencodeGateway.Contracts;
using OpencodeGateway.Store;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Upstreams;

/// <summary>
/// Upstreams registered and removed at run time on a single node (SQLite store) in front of fake opencode servers: served
/// at once, every field checked, the configured ones left alone, passwords stored encrypted and never answered back, and
/// a removed upstream's sessions answering <c>upstream_not_found</c> while their watchers stay connected.
/// </summary>
public sealed class UpstreamRegistrationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);
    private static readonly string SecretKey = Convert.ToBase64String([.. Enumerable.Range(1, 32).Select(i => (byte)i)]);

    private static async Task<Dictionary<string, JsonElement>> UpstreamsAsync(HttpClient admin) =>
        (await admin.GetFromJsonAsync<JsonElement>("api/upstreams")).EnumerateArray().ToDictionary(u => u.GetProperty("id").GetString()!);

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(Task<HttpResponseMessage> request)
    {
        using var response = await request;
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private static string Delta(string sessionId, string delta) => JsonSerializer.Serialize(new
    {
        directory = "/w", project = "p",
        payload = new { id = "evt_x", type = "message.part.delta", properties = new { sessionID = sessionId, messageID = "msg_1", partID = "prt_1", field = "text", delta } },
    });

    [Fact]
    public async Task An_upstream_registered_at_run_time_serves_sessions_at_once_and_once_removed_they_answer_upstream_not_found()
    {
        await using var host = await GatewayHost.StartAsync();
        await using var sandbox = await FakeOpencode.StartAsync();
        using var admin = host.ApiKeyClient(GatewayHost.AdminApiKey);

        using var created = await admin.PostAsJsonAsync("api/upstreams", new { id = "sandbox-1", baseUrl = sandbox.BaseUrl, directory = "/work/sandbox 1" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("/api/upstreams/sandbox-1", created.Headers.Location?.OriginalString);
        var status = await created.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal((sandbox.BaseUrl.ToString(), false, "/work/sandbox 1"),
            (status.GetProperty("baseUrl").GetString(), status.GetProperty("configured").GetBoolean(), status.GetProperty("directory").GetString()));
        // Its one event stream is read; the configured upstream's too.
        await Eventually.HoldsAsync(() => sandbox.Subscribers == 1, "the sandbox's event stream read", Timeout);
        await Eventually.HoldsAsync(() => UpstreamsAsync(admin).Result.Values.All(u => u.GetProperty("connected").GetBoolean()), "both streams connected", Timeout);
        Assert.True((await UpstreamsAsync(admin))["local"].GetProperty("configured").GetBoolean());

        // A session created on it lives there (in its directory), and its events reach its watchers.
        await using var alice = await host.ConnectHubAsync("alice");
        var sessionId = (await alice.CreateSessionAsync(new CreateSessionRequest("on the sandbox", Upstream: "sandbox-1"))).GetProperty("id").GetString()!;
        Assert.True(sandbox.HasSession(sessionId));
        Assert.False(host.Upstream.HasSession(sessionId));
        await using var watcher = await ObservedSession.StartAsync(host.HubUrl, sessionId);
        sandbox.Emit(Delta(sessionId, "hello "));
        sandbox.Emit(Delta(sessionId, "sandbox"));
        await watcher.WaitUntilAsync(w => w.AllText().Contains("hello sandbox", StringComparison.Ordinal), Timeout, "the sandbox's text");

        var (removed, _) = await SendAsync(admin.DeleteAsync("api/upstreams/sandbox-1"));
        Assert.Equal(HttpStatusCode.NoContent, removed);

        // The watcher is told, and stays connected.
        await watcher.WaitUntilAsync(w => w.View.Error is { } error && error.GetRawText().Contains("\"upstream_not_found\"", StringComparison.Ordinal), Timeout,
            "an upstream_not_found error event");
        Assert.Empty(watcher.Read(w => w.Failures));
        Assert.False(watcher.IsClosed);
        await watcher.Client.ListSessionsAsync();
        // Its sessions answer upstream_not_found, on the hub and over HTTP.
        var join = await Assert.ThrowsAsync<HubException>(() => alice.JoinAsync(new JoinRequest(sessionId)));
        Assert.Equal(GatewayErrorCodes.UpstreamNotFound, join.GatewayCode());
        var prompt = await Assert.ThrowsAsync<HubException>(() => alice.PromptAsync(new PromptRequest(sessionId, "still there?")));
        Assert.Equal(GatewayErrorCodes.UpstreamNotFound, prompt.GatewayCode());
        var create = await Assert.ThrowsAsync<HubException>(() => alice.CreateSessionAsync(new CreateSessionRequest("again", Upstream: "sandbox-1")));
        Assert.Equal(GatewayErrorCodes.UpstreamNotFound, create.GatewayCode());
        using var http = host.HttpClient("alice");
        var (chatStatus, chat) = await SendAsync(http.GetAsync($"api/chat?sessionId={sessionId}"));
        Assert.Equal((HttpStatusCode.NotFound, GatewayErrorCodes.UpstreamNotFound), (chatStatus, chat.GetProperty("code").GetString()));
        // Its stream is closed for good; the configured upstream is untouched.
        await Eventually.HoldsAsync(() => sandbox.Subscribers == 0, "the sandbox's event stream closed", Timeout);
        Assert.Equal(["local"], (await UpstreamsAsync(admin)).Keys);
        Assert.Equal(1, host.Upstream.Subscribers);
        Assert.Empty(sandbox.Prompts);
    }

    [Fact]
    public async Task Every_field_is_checked_ids_are_unique_and_configured_upstreams_cannot_be_removed()
    {
        await using var host = await GatewayHost.StartAsync();
        using var admin = host.ApiKeyClient(GatewayHost.AdminApiKey);
        var url = host.Upstream.BaseUrl.ToString();
        var bad = new (object Body, string Field)[]
        {
            (new { id = "has space", baseUrl = url }, "id"),
            (new { id = new string('a', 65), baseUrl = url }, "id"),
            (new { baseUrl = url }, "id"),
            (new { id = "x", baseUrl = "/relative" }, "baseUrl"),
            (new { id = "x", baseUrl = "ftp://host/" }, "baseUrl"),
            (new { id = "x", baseUrl = "http://host:4096/?q=1" }, "baseUrl"),
            (new { id = "x", baseUrl = "http://opencode:secret@host:4096/" }, "baseUrl"),
            (new { id = "x", baseUrl = url, directory = "" }, "directory"),
            (new { id = "x", baseUrl = url, directory = "/a\nb" }, "directory"),
            (new { id = "x", baseUrl = url, password = "  " }, "password"),
            (new { id = 5, baseUrl = url }, "id"),
        };
        foreach (var (body, field) in bad)
        {
            var (status, problem) = await SendAsync(admin.PostAsJsonAsync("api/upstreams", body));
            Assert.True(status == HttpStatusCode.BadRequest, $"{JsonSerializer.Serialize(body)}: {status}");
            Assert.Equal(GatewayErrorCodes.BadRequest, problem.GetProperty("code").GetString());
            Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{JsonSerializer.Serialize(body)}: {problem}");
        }

        // Without Gateway:UpstreamRegistry:SecretKey a password cannot be stored: refused, naming the key.
        var (noKey, noKeyProblem) = await SendAsync(admin.PostAsJsonAsync("api/upstreams", new { id = "x", baseUrl = url, password = "pw" }));
        Assert.Equal(HttpStatusCode.BadRequest, noKey);
        Assert.Contains("Gateway:UpstreamRegistry:SecretKey", noKeyProblem.GetProperty("errors").GetProperty("password")[0].GetString(), StringComparison.Ordinal);

        // Ids are unique among the configured and the registered ones.
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(admin.PostAsJsonAsync("api/upstreams", new { id = "x", baseUrl = url }))).Status);
        foreach (var id in new[] { "x", "local" })
        {
            var (status, problem) = await SendAsync(admin.PostAsJsonAsync("api/upstreams", new { id, baseUrl = url }));
            Assert.Equal((HttpStatusCode.Conflict, GatewayErrorCodes.Conflict), (status, problem.GetProperty("code").GetString()));
        }

        // A configured upstream is not removed through the API; an unknown one is not found.
        var (configured, configuredProblem) = await SendAsync(admin.DeleteAsync("api/upstreams/local"));
        Assert.Equal(HttpStatusCode.Conflict, configured);
        Assert.Contains("configured", configuredProblem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        foreach (var id in new[] { "nope", "not%20an%20id" })
        {
            var (status, problem) = await SendAsync(admin.DeleteAsync($"api/upstreams/{id}"));
            Assert.Equal((HttpStatusCode.NotFound, GatewayErrorCodes.UpstreamNotFound), (status, problem.GetProperty("code").GetString()));
        }

        // Admins only.
        using var alice = host.HttpClient("alice");
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(alice.GetAsync("api/upstreams"))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(alice.PostAsJsonAsync("api/upstreams", new { id = "y", baseUrl = url }))).Status);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(alice.DeleteAsync("api/upstreams/x"))).Status);
        Assert.Equal(["local", "x"], (await UpstreamsAsync(admin)).Keys.Order());

        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(admin.DeleteAsync("api/upstreams/x"))).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await SendAsync(admin.DeleteAsync("api/upstreams/x"))).Status);
    }

    [Fact]
    public async Task A_password_is_stored_encrypted_never_answered_back_and_opened_again_after_a_restart_with_the_same_key_only()
    {
        const string password = "sandbox-password-7f3a";
        var data = Directory.CreateTempSubdirectory("gateway-registry-").FullName;
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(string Request, string? Authorization, string? Directory)>();
        var (server, address) = await LoopbackApp.StartAsync(app => app.Run(async context =>
        {
            seen.Enqueue(($"{context.Request.Method} {context.Request.Path}", context.Request.Headers.Authorization.FirstOrDefault(),
                context.Request.Headers["x-opencode-directory"].FirstOrDefault()));
            if (context.Request is { Method: "POST", Path.Value: "/session" })
            {
                await context.Response.WriteAsJsonAsync(new { id = "ses_pw1", title = "t" });
                return;
            }

            context.Response.StatusCode = StatusCodes.Status404NotFound;
        }));
        await using var _ = server;
        GatewayHostOptions Options(string key) => new()
        {
            // (the pump never connects to this server: readiness only waits for the configured one)
            WaitUntilReady = false,
            Settings = { ["Gateway:Store:DataDirectory"] = data, ["Gateway:UpstreamRegistry:SecretKey"] = key },
        };
        try
        {
            await using (var first = await GatewayHost.StartAsync(Options(SecretKey)))
            {
                using var admin = first.ApiKeyClient(GatewayHost.AdminApiKey);
                using var created = await admin.PostAsJsonAsync("api/upstreams", new { id = "pw", baseUrl = address, directory = "/srv/é", password });
                var text = await created.Content.ReadAsStringAsync();
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                Assert.DoesNotContain(password, text, StringComparison.Ordinal);
                Assert.DoesNotContain(password, await admin.GetStringAsync("api/upstreams"), StringComparison.Ordinal);
            }

            // What a reader of the database finds: not the password.
            await using (var connection = new SqliteConnection(SqliteSessionStore.ConnectionStringFor(data)))
            {
                await connection.OpenAsync();
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT password FROM upstreams WHERE id = 'pw'";
                var stored = (string)(await command.ExecuteScalarAsync())!;
                Assert.StartsWith("v1.", stored, StringComparison.Ordinal);
                Assert.DoesNotContain(password, stored, StringComparison.Ordinal);
                Assert.DoesNotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes(password)), stored, StringComparison.Ordinal);
            }

            SqliteConnection.ClearAllPools();
            // Started again with the same key: the upstream is back, and opencode gets the password as basic auth.
            await using (var second = await GatewayHost.StartAsync(Options(SecretKey)))
            {
                using var admin = second.ApiKeyClient(GatewayHost.AdminApiKey);
                Assert.Contains("pw", (await UpstreamsAsync(admin)).Keys);
                await using var hub = await second.ConnectHubAsync("alice");
                await hub.CreateSessionAsync(new CreateSessionRequest("t", Upstream: "pw"));
                var create = Assert.Single(seen, s => s.Request == "POST /session");
                Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"opencode:{password}")), create.Authorization);
                Assert.Equal(Uri.EscapeDataString("/srv/é"), create.Directory);
            }

            SqliteConnection.ClearAllPools();
            // With another key the password cannot be opened: the upstream is left out (and logged), not served without it.
            var otherKey = Convert.ToBase64String(new byte[32]);
            await using (var third = await GatewayHost.StartAsync(Options(otherKey)))
            {
                using var admin = third.ApiKeyClient(GatewayHost.AdminApiKey);
                Assert.DoesNotContain("pw", (await UpstreamsAsync(admin)).Keys);
                await using var hub = await third.ConnectHubAsync("alice");
                var refused = await Assert.ThrowsAsync<HubException>(() => hub.CreateSessionAsync(new CreateSessionRequest("t", Upstream: "pw")));
                Assert.Equal(GatewayErrorCodes.UpstreamNotFound, refused.GatewayCode());
                // Still the admins' to remove.
                Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(admin.DeleteAsync("api/upstreams/pw"))).Status);
            }

            Assert.Single(seen, s => s.Request == "POST /session");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(data, recursive: true);
        }
    }
}
