using System.Net;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Diagnostics;

/// <summary>
/// The internals (<c>/metrics</c>, <c>/openapi/v1.json</c>, the detailed health bodies) of a Production node: never to
/// anonymous callers on its public port; to admins there when no management URL is set; on the management URL only when
/// one is.
/// </summary>
public sealed class ManagementAccessTests
{
    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Without_management_urls_a_production_node_shows_its_internals_to_admins_only()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions { Environment = "Production" });
        using var anonymous = gateway.HttpClient(userId: null);
        using var alice = gateway.HttpClient("alice");
        using var admin = gateway.ApiKeyClient(GatewayHost.AdminApiKey);
        foreach (var path in new[] { "metrics", "openapi/v1.json" })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(anonymous, path)).Status);
            Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(alice, path)).Status);
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(admin, path)).Status);
        }

        var (status, body) = await GetAsync(anonymous, "readyz");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"status":"Healthy"}""", body);
        var detailed = JsonDocument.Parse((await GetAsync(admin, "readyz")).Body).RootElement;
        Assert.Equal("Healthy", detailed.GetProperty("checks").GetProperty("store").GetProperty("status").GetString());
        Assert.False(detailed.GetProperty("checks").TryGetProperty("upstreams", out _));
    }

    [Fact]
    public async Task With_a_management_url_the_internals_are_there_for_anyone_and_nowhere_else()
    {
        var port = FreePorts.Take();
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Environment = "Production", Settings = { ["Gateway:Management:Urls"] = $"http://127.0.0.1:{port}" },
        });
        using var management = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        using var admin = gateway.ApiKeyClient(GatewayHost.AdminApiKey);
        var metrics = await GetAsync(management, "metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        Assert.Contains("gateway_upstream_stream_connected{otel_scope_name=\"OpencodeGateway\",upstream=\"local\"} 1", metrics.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(management, "openapi/v1.json")).Status);
        Assert.Contains("\"checks\"", (await GetAsync(management, "readyz")).Body, StringComparison.Ordinal);

        // The public port: not even to admins, and the rest of the API is where it was.
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(admin, "metrics")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync(admin, "openapi/v1.json")).Status);
        Assert.Equal("""{"status":"Healthy"}""", (await GetAsync(admin, "readyz")).Body);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(admin, "api/upstreams")).Status);
    }
}
