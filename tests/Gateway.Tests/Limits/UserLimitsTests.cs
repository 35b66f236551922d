using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Gateway.Tests.Support;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Limits;

/// <summary>
/// Every per-user limit on a single node (counts in memory), through the gateway's real pipeline: hub connections refused
/// before the upgrade (negotiate and a skip-negotiation WebSocket) with 429, <c>Retry-After</c> and problem+json; hub
/// calls refused with <c>rate_limited: … retry after N s</c> while the connection stays; HTTP routes refused with 429
/// before anything is created; other users and admins unaffected; every refusal counted by limit. Windows move on a
/// <see cref="FakeTimeProvider"/>.
/// </summary>
public sealed class UserLimitsTests
{
    private static Task<GatewayHost> StartAsync(FakeTimeProvider? clock, params (string Key, string Value)[] settings)
    {
        var options = new GatewayHostOptions
        {
            Time = clock,
            // The fake clock stands still for the silent-connection watch too: only these tests' advances move it.
            Settings = { ["Gateway:Hub:ClientTimeoutInterval"] = "01:00:00", ["Gateway:Hub:KeepAliveInterval"] = "00:00:15" },
        };
        foreach (var (key, value) in settings)
        {
            options.Settings[key] = value;
        }

        return GatewayHost.StartAsync(options);
    }

    private static FakeTimeProvider NewClock() => new(DateTimeOffset.UtcNow);

    private static async Task<JsonElement> AssertRateLimitedAsync(HttpResponseMessage response, string limit)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(response.Headers.RetryAfter?.Delta is { TotalSeconds: >= 1 }, $"Retry-After: {response.Headers.RetryAfter}");
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(GatewayErrorCodes.RateLimited, problem.GetProperty("code").GetString());
        Assert.Contains($"Gateway:Limits:{limit}", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        return problem;
    }

    private static async Task<HubException> AssertHubRateLimitedAsync(Func<Task> call, string limit)
    {
        var refused = await Assert.ThrowsAsync<HubException>(call);
        Assert.Equal(GatewayErrorCodes.RateLimited, refused.GatewayCode());
        Assert.Contains($"Gateway:Limits:{limit}", refused.Message, StringComparison.Ordinal);
        Assert.Matches(@"retry after \d+ s\.$", refused.Message);
        return refused;
    }

    private static Task<HttpResponseMessage> NegotiateAsync(GatewayHost gateway, HttpClient http) =>
        http.PostAsync(new Uri(gateway.HubUrl, "session/negotiate?negotiateVersion=1"), null);

    /// <summary>A WebSocket straight to the hub (no negotiation, as clients behind a load balancer do): its HTTP status.</summary>
    private static async Task<HttpStatusCode> ConnectWebSocketAsync(GatewayHost gateway, string token)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        var url = new UriBuilder(gateway.HubUrl) { Scheme = "ws", Query = $"access_token={token}" }.Uri;
        try
        {
            await socket.ConnectAsync(url, CancellationToken.None);
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        catch (WebSocketException)
        {
            // refused before the upgrade: the status says why
        }

        return socket.HttpStatusCode;
    }

    private static long Refusals(MetricCollector<long> refused, string limit) =>
        refused.GetMeasurementSnapshot().Where(m => Equals(m.Tags["limit"], limit)).Sum(m => m.Value);

    [Fact]
    public async Task A_users_connections_past_the_limit_are_refused_before_the_upgrade_and_others_are_not()
    {
        await using var gateway = await StartAsync(null, ("Gateway:Limits:ConnectionsPerUser", "3"));
        using var refused = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.limits.refused");
        var tabs = new List<GatewayHubClient>();
        for (var i = 0; i < 3; i++)
        {
            tabs.Add(await gateway.ConnectHubAsync("alice"));
        }

        using var alice = gateway.HttpClient("alice");
        var problem = await AssertRateLimitedAsync(await NegotiateAsync(gateway, alice), "ConnectionsPerUser");
        Assert.Contains("'alice'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.TooManyRequests, await ConnectWebSocketAsync(gateway, GatewayHost.Token("alice")));
        Assert.Equal(HttpStatusCode.TooManyRequests, await ConnectWebSocketAsync(gateway, GatewayHost.Token("alice")));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => gateway.ConnectHubAsync("alice"));
        Assert.Equal(4, Refusals(refused, "ConnectionsPerUser"));

        // Another user, and an admin, connect as usual; the refused ones took nothing.
        await using var bob = await gateway.ConnectHubAsync("bob");
        Assert.Equal(HttpStatusCode.SwitchingProtocols, await ConnectWebSocketAsync(gateway, GatewayHost.Token("bob")));
        await using var admin1 = await gateway.ConnectHubAsync(GatewayHost.AsAdmin());
        Assert.All(tabs, t => Assert.False(t.IsClosed));

        // A closed tab gives its slot back.
        await tabs[0].DisposeAsync();
        await Eventually.HoldsAsync(async () => (await NegotiateAsync(gateway, alice)).IsSuccessStatusCode, "alice's closed tab gave its slot back");
        await using var again = await gateway.ConnectHubAsync("alice");
        foreach (var tab in tabs.Skip(1))
        {
            await tab.DisposeAsync();
        }
    }

    [Fact]
    public async Task Prompts_past_the_limit_are_refused_until_the_minute_allows_one_more_and_the_connection_stays()
    {
        var clock = NewClock();
        await using var gateway = await StartAsync(clock, ("Gateway:Limits:PromptsPerMinute", "3"));
        await using var hub = await gateway.ConnectHubAsync("alice");
        var sessionId = (await hub.CreateSessionAsync()).GetProperty("id").GetString()!;
        for (var i = 0; i < 3; i++)
        {
            await hub.PromptAsync(new PromptRequest(sessionId, $"prompt {i}"));
            clock.Advance(TimeSpan.FromSeconds(10));
        }

        var refused = await AssertHubRateLimitedAsync(() => hub.PromptAsync(new PromptRequest(sessionId, "one too many")), "PromptsPerMinute");
        Assert.EndsWith("retry after 30 s.", refused.Message, StringComparison.Ordinal); // the first prompt leaves the window in 30 s
        Assert.Equal(3, gateway.Upstream.Prompts.Count);
        await hub.ListSessionsAsync(); // the connection is still there

        // The same count on every route: /api/chat refuses before it creates a session, the AI SDK route too.
        var sessionsBefore = gateway.Upstream.Requests.Count(r => r == "POST /session");
        using var http = gateway.HttpClient("alice");
        await AssertRateLimitedAsync(await http.PostAsync("/api/chat", JsonContent("""{"message":"hello"}""")), "PromptsPerMinute");
        await AssertRateLimitedAsync(await http.PostAsync("/api/ai-sdk/chat",
            JsonContent("""{"id":"chat-1","trigger":"submit-message","messages":[{"id":"m1","role":"user","parts":[{"type":"text","text":"hi"}]}]}""")),
            "PromptsPerMinute");
        Assert.Equal(sessionsBefore, gateway.Upstream.Requests.Count(r => r == "POST /session"));
        Assert.Equal(3, gateway.Upstream.Prompts.Count);

        // Another user is not counted with alice; an admin is not counted at all.
        await using var bob = await gateway.ConnectHubAsync("bob");
        var bobs = (await bob.CreateSessionAsync()).GetProperty("id").GetString()!;
        await bob.PromptAsync(new PromptRequest(bobs, "bob's"));
        await using var admin = await gateway.ConnectHubAsync(GatewayHost.AsAdmin());
        for (var i = 0; i < 5; i++)
        {
            await admin.PromptAsync(new PromptRequest(sessionId, $"admin {i}"));
        }

        clock.Advance(TimeSpan.FromSeconds(31));
        await hub.PromptAsync(new PromptRequest(sessionId, "allowed again"));
        await AssertHubRateLimitedAsync(() => hub.PromptAsync(new PromptRequest(sessionId, "and refused again")), "PromptsPerMinute");
    }

    [Fact]
    public async Task A_prompt_to_another_session_is_refused_while_the_user_runs_the_most_sessions()
    {
        var clock = NewClock();
        await using var gateway = await StartAsync(clock, ("Gateway:Limits:BusySessionsPerUser", "2"));
        using var refused = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.limits.refused");
        await using var hub = await gateway.ConnectHubAsync("alice");
        var ids = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add((await hub.CreateSessionAsync()).GetProperty("id").GetString()!);
        }

        // Two prompted sessions run: one says busy, the other has not said anything yet (a burst is counted too).
        await hub.PromptAsync(new PromptRequest(ids[0], "a"));
        await EmitStatusAsync(gateway, ids[0], "busy");
        await hub.PromptAsync(new PromptRequest(ids[1], "b"));
        await AssertHubRateLimitedAsync(() => hub.PromptAsync(new PromptRequest(ids[2], "c")), "BusySessionsPerUser");
        using var http = gateway.HttpClient("alice");
        var sessionsBefore = gateway.Upstream.Requests.Count(r => r == "POST /session");
        await AssertRateLimitedAsync(await http.PostAsync("/api/chat", JsonContent("""{"message":"new"}""")), "BusySessionsPerUser");
        Assert.Equal(sessionsBefore, gateway.Upstream.Requests.Count(r => r == "POST /session"));

        // A running session may be prompted again (opencode queues it).
        await hub.PromptAsync(new PromptRequest(ids[0], "a again"));
        Assert.Equal(2, Refusals(refused, "BusySessionsPerUser"));

        // The session that never said anything stops counting after the grace; the busy one once it is idle.
        clock.Advance(TimeSpan.FromSeconds(16));
        await hub.PromptAsync(new PromptRequest(ids[2], "c"));
        await AssertHubRateLimitedAsync(() => hub.PromptAsync(new PromptRequest(ids[3], "d")), "BusySessionsPerUser");
        await EmitStatusAsync(gateway, ids[0], "idle");
        await hub.PromptAsync(new PromptRequest(ids[3], "d"));
        Assert.Equal([ids[0], ids[1], ids[0], ids[2], ids[3]], gateway.Upstream.Prompts);
    }

    [Fact]
    public async Task A_connection_watches_at_most_the_sessions_allowed_and_stays_when_refused()
    {
        await using var gateway = await StartAsync(null, ("Gateway:Limits:SessionsPerConnection", "2"));
        await using var hub = await gateway.ConnectHubAsync("alice");
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await hub.CreateSessionAsync()).GetProperty("id").GetString()!);
        }

        await hub.JoinAsync(new JoinRequest(ids[0]));
        await hub.JoinAsync(new JoinRequest(ids[1]));
        await hub.JoinAsync(new JoinRequest(ids[1])); // joined already: not one more
        await AssertHubRateLimitedAsync(() => hub.JoinAsync(new JoinRequest(ids[2])), "SessionsPerConnection");

        await hub.LeaveAsync(ids[0]);
        await hub.JoinAsync(new JoinRequest(ids[2]));
        await using var other = await gateway.ConnectHubAsync("alice");
        await other.JoinAsync(new JoinRequest(ids[0]));
    }

    [Fact]
    public async Task A_client_address_that_keeps_failing_to_authenticate_is_refused_until_the_minute_allows_one_more()
    {
        var clock = NewClock();
        await using var gateway = await StartAsync(clock, ("Gateway:Limits:AuthFailuresPerMinute", "3"));
        using var refused = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.limits.refused");
        using var wrongKey = gateway.ApiKeyClient("not-a-key");
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await wrongKey.GetAsync("/api/sessions")).StatusCode);
        }

        await AssertRateLimitedAsync(await wrongKey.GetAsync("/api/sessions"), "AuthFailuresPerMinute");
        using var badToken = new HttpClient { BaseAddress = gateway.BaseUrl };
        badToken.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayHost.Token("alice") + "x");
        await AssertRateLimitedAsync(await badToken.GetAsync("/api/sessions"), "AuthFailuresPerMinute");
        Assert.Equal(HttpStatusCode.TooManyRequests, await ConnectWebSocketAsync(gateway, "garbage"));
        // Every request with credentials from the address waits, good ones too; requests without any are not concerned.
        using var alice = gateway.HttpClient("alice");
        await AssertRateLimitedAsync(await alice.GetAsync("/api/sessions"), "AuthFailuresPerMinute");
        using var anonymous = new HttpClient { BaseAddress = gateway.BaseUrl };
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/sessions")).StatusCode);
        Assert.Equal(4, Refusals(refused, "AuthFailuresPerMinute"));

        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("/api/sessions")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrongKey.GetAsync("/api/sessions")).StatusCode);
    }

    [Fact]
    public async Task The_node_holds_at_most_its_connections_whoever_their_users()
    {
        await using var gateway = await StartAsync(null, ("Gateway:Limits:ConnectionsPerNode", "2"), ("Gateway:Limits:ConnectionsPerUser", "2"));
        await using var alice = await gateway.ConnectHubAsync("alice");
        await using var bob = await gateway.ConnectHubAsync("bob");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, await ConnectWebSocketAsync(gateway, GatewayHost.Token("carol")));
        using var carol = gateway.HttpClient("carol");
        var negotiation = await NegotiateAsync(gateway, carol);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, negotiation.StatusCode);
        Assert.Equal("application/problem+json", negotiation.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(negotiation.Headers.RetryAfter);
        Assert.False(alice.IsClosed);

        await bob.DisposeAsync();
        await Eventually.HoldsAsync(async () => (await NegotiateAsync(gateway, carol)).IsSuccessStatusCode, "bob's closed connection made room");
        await using var carolHub = await gateway.ConnectHubAsync("carol");
    }

    private static StringContent JsonContent(string json) => new(json, Encoding.UTF8, "application/json");

    /// <summary>opencode says the session's status; returns once the gateway's live state has it (a joined watcher hears it).</summary>
    private static async Task EmitStatusAsync(GatewayHost gateway, string sessionId, string type)
    {
        await using var watcher = await gateway.ConnectHubAsync(GatewayHost.AsAdmin() with { Events = EventForms.Full });
        var heard = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = watcher.OnSessionEvent(e =>
        {
            if (e.GetProperty("type").GetString() == SessionEventTypes.Status
                && e.GetProperty("status").GetProperty("type").GetString() == type)
            {
                heard.TrySetResult();
            }
        });
        await watcher.JoinAsync(new JoinRequest(sessionId));
        gateway.Upstream.Emit("session.status", new { sessionID = sessionId, status = new { type } });
        await heard.Task.WaitAsync(Eventually.DefaultTimeout);
    }
}
