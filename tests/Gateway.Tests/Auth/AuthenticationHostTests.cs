using OpencodeGateway.Testing;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Options;

namespace Gateway.Tests.Auth;

/// <summary>The authentication scheme inside the running gateway: where tokens are accepted, dev mode, API keys.</summary>
public sealed class AuthenticationHostTests
{
    [Fact]
    public async Task A_token_in_the_query_string_is_refused_outside_hubs_and_accepted_in_the_header()
    {
        await using var host = await GatewayHost.StartAsync();
        var token = TestTokens.Mint("alice");
        using var client = host.HttpClient(userId: null);

        var query = await client.GetAsync($"/api/sessions?access_token={token}");
        Assert.Equal(HttpStatusCode.Unauthorized, query.StatusCode);
        Assert.Contains("only for /hubs/", await query.Content.ReadAsStringAsync());

        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/sessions");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);

        // the same token in the query of the hub path is accepted (WebSocket clients cannot set headers)
        await using var hub = await host.ConnectHubAsync(new GatewayHubClientOptions { AccessToken = token, TokenInQuery = true });
        Assert.Equal(0, (await hub.InvokeAsync("ListSessions", new { })).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task Bad_credentials_are_refused_with_a_problem_naming_the_reason()
    {
        await using var host = await GatewayHost.StartAsync();
        using var client = host.HttpClient(userId: null);

        async Task<string> Refused(string header, string value)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/sessions");
            request.Headers.TryAddWithoutValidation(header, value);
            var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            return await response.Content.ReadAsStringAsync();
        }

        Assert.Contains("token expired", await Refused("Authorization", "Bearer " + TestTokens.Mint("alice", lifetime: TimeSpan.FromMinutes(-5))));
        Assert.Contains("Bearer", await Refused("Authorization", "Basic YWxpY2U6cHc="));
        Assert.Contains("unknown API key", await Refused("X-Api-Key", "nope"));
        // dev mode is off here: the debug header is not a credential
        Assert.Contains("authentication is required", await Refused("X-Debug-User", "alice"));
    }

    [Fact]
    public async Task Dev_mode_trusts_the_debug_header_only_when_switched_on()
    {
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["Gateway:Auth:DevMode"] = "true" }, Environment = "Development",
        });
        using var client = host.HttpClient(userId: null);
        client.DefaultRequestHeaders.Add("X-Debug-User", "dev-alice");
        client.DefaultRequestHeaders.Add("X-Debug-Workspaces", "w1");

        var created = await client.PostAsync("/api/sessions", new StringContent("""{"workspace":"w1"}""", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Contains("\"ownerId\":\"dev-alice\"", await created.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Dev_mode_is_refused_in_production_with_the_key_named()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["Gateway:Auth:DevMode"] = "true" }, Environment = "Production",
        }));

        Assert.Contains(e.Failures, f => f.StartsWith("Gateway:Auth:DevMode:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_identity_provider_over_plain_http_is_refused_in_production()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(new GatewayHostOptions
        {
            Environment = "Production",
            Settings = new Dictionary<string, string?>
            {
                ["Authentication:Schemes:Bearer:Authority"] = "http://idp.internal/",
                ["Authentication:Schemes:Bearer:ValidAudiences:0"] = "gateway",
                ["Authentication:Schemes:Bearer:RequireHttpsMetadata"] = "false",
            },
        }));

        Assert.Contains(e.Failures, f => f.StartsWith("Authentication:Schemes:Bearer:RequireHttpsMetadata: must not be false", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Gateway:Auth:Jwt:SigningKey", "too-short", "Gateway:Auth:Jwt:SigningKey: must be at least 32 bytes")]
    [InlineData("Gateway:Auth:Jwt:SigningKey", "base64:***", "Gateway:Auth:Jwt:SigningKey: the text after 'base64:'")]
    [InlineData("Gateway:Auth:ApiKeys:0:KeyHash", "abc", "Gateway:Auth:ApiKeys:0:KeyHash:")]
    [InlineData("Gateway:Auth:UserIdClaim", "user id", "Gateway:Auth:UserIdClaim: must be a claim name")]
    [InlineData("Authentication:Schemes:Bearer:Authority", "http://idp.example/", "Authentication:Schemes:Bearer:Authority: must be https://")]
    [InlineData("Authentication:Schemes:Bearer:Authority", "https://idp.example/", "Authentication:Schemes:Bearer:ValidAudiences: at least one audience is required")]
    [InlineData("Authentication:Schemes:Bearer:ValidAudience", "gateway", "Authentication:Schemes:Bearer:Authority: required")]
    [InlineData("Authentication:Schemes:Bearer:RefreshInterval", "00:00:00.5", "Authentication:Schemes:Bearer:RefreshInterval: '00:00:00.5' must be")]
    [InlineData("Gateway:Store:Provider", "mysql", "Gateway:Store:Provider: 'mysql'")]
    [InlineData("Gateway:Store:Provider", "postgres", "ConnectionStrings:Gateway:")]
    public async Task Invalid_settings_stop_the_start_with_one_line_naming_the_key(string key, string value, string expected)
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { [key] = value },
        }));

        Assert.Contains(e.Failures, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_postgres_connection_string_alone_selects_postgres()
    {
        var options = new OpencodeGateway.Store.StoreOptions { NamedConnectionString = "Host=127.0.0.1;Port=1;Database=x" };
        Assert.Equal("postgres", options.ResolvedProvider);
        Assert.Equal("sqlite", new OpencodeGateway.Store.StoreOptions().ResolvedProvider);

        // started for real: it tries PostgreSQL (and fails to connect), it does not fall back to SQLite
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["ConnectionStrings:Gateway"] = "Host=127.0.0.1;Port=1;Database=x;Timeout=2" },
        }));
    }
}
