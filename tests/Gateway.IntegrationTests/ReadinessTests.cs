using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// Readiness is the node's own: with one of two real opencode servers down, <c>/readyz</c> stays 200, the users of
/// the other server are served, and <c>GET /api/upstreams</c> says which stream is down and why.
/// </summary>
[Collection(OpencodeCollection.Name)]
public sealed class ReadinessTests(OpencodeStack stack)
{
    [Fact]
    public async Task One_of_two_opencodes_down_leaves_the_node_ready_and_the_upstreams_api_reports_it()
    {
        var second = new OpencodeStack(FreePorts.Take(1, withNext: true)[0]);
        await second.InitializeAsync();
        try
        {
            await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
            {
                Upstream = stack.BaseUrl,
                Settings =
                {
                    ["Gateway:Upstreams:1:Id"] = "second", ["Gateway:Upstreams:1:BaseUrl"] = second.BaseUrl.ToString(),
                    ["Gateway:Streaming:ReconnectMaxDelay"] = "00:00:01",
                },
            });
            using var admin = gateway.ApiKeyClient(GatewayHost.AdminApiKey);
            using var anonymous = gateway.HttpClient(userId: null);
            async Task<Dictionary<string, JsonElement>> UpstreamsAsync() =>
                (await admin.GetFromJsonAsync<JsonElement>("api/upstreams")).EnumerateArray().ToDictionary(u => u.GetProperty("id").GetString()!);
            Assert.All((await UpstreamsAsync()).Values, u => Assert.True(u.GetProperty("connected").GetBoolean()));

            await second.DisposeAsync();
            await Eventually.HoldsAsync(() => !UpstreamsAsync().Result["second"].GetProperty("connected").GetBoolean(), "the second stream down",
                TimeSpan.FromSeconds(30));
            var upstreams = await UpstreamsAsync();
            Assert.True(upstreams["local"].GetProperty("connected").GetBoolean());
            Assert.Equal(second.BaseUrl.ToString(), upstreams["second"].GetProperty("baseUrl").GetString());
            Assert.False(string.IsNullOrEmpty(upstreams["second"].GetProperty("lastError").GetString()));
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("readyz")).StatusCode);

            // Users of the server that is up are served: a session on it streams an answer.
            await using var connection = await gateway.ConnectHubAsync("alice");
            var sessionId = (await connection.CreateSessionAsync(new CreateSessionRequest("on the healthy server", Upstream: "local")))
                .GetProperty("id").GetString()!;
            await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
            await watcher.Client.PromptAsync(new PromptRequest(sessionId, "still here tokens=20"));
            await watcher.WaitUntilAsync(w => w.View.StatusType == "idle" && w.AllText().Contains("t20 ", StringComparison.Ordinal),
                TimeSpan.FromSeconds(60), "the answer");
            Assert.Equal(OpencodeText.AllText(await stack.StoredMessagesAsync(sessionId)), watcher.Read(w => w.AllText()));
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("readyz")).StatusCode);
        }
        finally
        {
            await second.DisposeAsync();
        }
    }
}
