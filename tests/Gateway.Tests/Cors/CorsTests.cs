using System.Net;
using System.Net.Http.Headers;
using Gateway.Tests.Support;
using GatewayHost = Gateway.Tests.Support.GatewayHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpencodeGateway.Cors;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Cors;

/// <summary><c>Gateway:Cors</c>: validation at start, and the headers the running gateway answers with.</summary>
public sealed class CorsTests
{
    private const string App = "http://localhost:3000";

    private static Dictionary<string, string?> Allowing(params string[] origins)
    {
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < origins.Length; i++)
        {
            settings[$"Gateway:Cors:AllowedOrigins:{i}"] = origins[i];
        }

        return settings;
    }

    private static ValidateOptionsResult Validate(GatewayCorsOptions options) => new GatewayCorsOptionsValidator().Validate(null, options);

    [Theory]
    [InlineData("http://localhost:3000")]
    [InlineData("https://app.example.com")]
    [InlineData("http://[::1]:8080")]
    public void Accepts_origins_as_browsers_send_them(string origin)
    {
        Assert.True(Validate(new GatewayCorsOptions { AllowedOrigins = [origin] }).Succeeded);
    }

    [Theory]
    [InlineData("http://localhost:3000/")]
    [InlineData("http://localhost:3000/app")]
    [InlineData("http://localhost:3000?x=1")]
    [InlineData("localhost:3000")]
    [InlineData("ftp://files.example.com")]
    [InlineData("http://user@example.com")]
    [InlineData("https://*.example.com")]
    [InlineData("")]
    public void Refuses_anything_else_naming_the_key(string origin)
    {
        var result = Validate(new GatewayCorsOptions { AllowedOrigins = [App, origin] });
        Assert.StartsWith("Gateway:Cors:AllowedOrigins:1: ", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public void The_wildcard_is_refused_with_credentials_and_accepted_without()
    {
        var refused = Validate(new GatewayCorsOptions { AllowedOrigins = ["*"] });
        Assert.StartsWith("Gateway:Cors:AllowedOrigins:0: '*' cannot be combined with Gateway:Cors:AllowCredentials=true",
            Assert.Single(refused.Failures!), StringComparison.Ordinal);

        Assert.True(Validate(new GatewayCorsOptions { AllowedOrigins = ["*"], AllowCredentials = false }).Succeeded);
    }

    [Fact]
    public void Refuses_a_preflight_cache_time_out_of_range()
    {
        var result = Validate(new GatewayCorsOptions { PreflightMaxAge = TimeSpan.FromDays(2) });
        Assert.StartsWith("Gateway:Cors:PreflightMaxAge: ", Assert.Single(result.Failures!), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_origin_stops_the_start_with_the_key_named()
    {
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(settings: Allowing(App, "http://x.test/path")));
        Assert.Contains(e.Failures, f => f.StartsWith("Gateway:Cors:AllowedOrigins:1: 'http://x.test/path' is not an origin", StringComparison.Ordinal));
    }

    [Fact]
    public async Task One_comma_separated_value_is_a_list_too()
    {
        await using var host = await GatewayHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Gateway:Cors:AllowedOrigins"] = $"{App}, https://other.example.com",
        });
        using var client = host.Server.CreateClient();

        foreach (var origin in new[] { App, "https://other.example.com" })
        {
            var response = await client.SendAsync(Preflight("/api/sessions", origin, "GET"));
            Assert.Equal(origin, Header(response, "Access-Control-Allow-Origin"));
        }

        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => GatewayHost.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Gateway:Cors:AllowedOrigins"] = $"{App},nope",
        }));
        Assert.Contains(e.Failures, f => f.StartsWith("Gateway:Cors:AllowedOrigins: 'nope' is not an origin", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("/api/sessions", "GET")]
    [InlineData("/api/chat", "POST")]
    [InlineData("/api/ai-sdk/chat", "POST")]
    [InlineData("/hubs/session/negotiate?negotiateVersion=1", "POST")]
    public async Task A_preflight_from_an_allowed_origin_is_answered_and_cached(string path, string method)
    {
        await using var host = await GatewayHost.StartAsync(settings: Allowing(App));
        using var client = host.Server.CreateClient();

        var response = await client.SendAsync(Preflight(path, App, method, "authorization,content-type,x-signalr-user-agent"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(App, Header(response, "Access-Control-Allow-Origin"));
        Assert.Equal("true", Header(response, "Access-Control-Allow-Credentials"));
        Assert.Equal("600", Header(response, "Access-Control-Max-Age"));
        Assert.Contains(method, Header(response, "Access-Control-Allow-Methods"));
        Assert.Equal("authorization,content-type,x-signalr-user-agent", Header(response, "Access-Control-Allow-Headers"));
    }

    [Fact]
    public async Task Another_origin_gets_no_cors_header_and_same_origin_only_is_the_default()
    {
        await using (var host = await GatewayHost.StartAsync(settings: Allowing(App)))
        {
            using var client = host.Server.CreateClient();
            var preflight = await client.SendAsync(Preflight("/api/sessions", "http://evil.test", "GET"));
            Assert.Null(Header(preflight, "Access-Control-Allow-Origin"));
            Assert.Null(Header(preflight, "Access-Control-Allow-Credentials"));
        }

        await using (var host = await GatewayHost.StartAsync())
        {
            using var client = host.Server.CreateClient();
            var preflight = await client.SendAsync(Preflight("/api/sessions", App, "GET"));
            Assert.Null(Header(preflight, "Access-Control-Allow-Origin"));
        }
    }

    [Fact]
    public async Task Actual_responses_carry_the_headers_refusals_included_and_only_under_api_and_hubs()
    {
        await using var host = await GatewayHost.StartAsync(settings: new Dictionary<string, string?>(Allowing(App))
        {
            ["Gateway:Cors:PreflightMaxAge"] = "00:01:00",
        });
        using var client = host.Server.CreateClient();

        using var negotiate = new HttpRequestMessage(HttpMethod.Post, "/hubs/session/negotiate?negotiateVersion=1");
        negotiate.Headers.Add("Origin", App);
        negotiate.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestTokens.Mint("alice"));
        var ok = await client.SendAsync(negotiate);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal(App, Header(ok, "Access-Control-Allow-Origin"));
        Assert.Equal("true", Header(ok, "Access-Control-Allow-Credentials"));

        using var anonymous = new HttpRequestMessage(HttpMethod.Get, "/api/sessions");
        anonymous.Headers.Add("Origin", App);
        var refused = await client.SendAsync(anonymous);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(App, Header(refused, "Access-Control-Allow-Origin")); // so the page can read the problem

        var preflight = await client.SendAsync(Preflight("/api/sessions", App, "GET"));
        Assert.Equal("60", Header(preflight, "Access-Control-Max-Age"));

        using var health = new HttpRequestMessage(HttpMethod.Get, "/healthz");
        health.Headers.Add("Origin", App);
        Assert.Null(Header(await client.SendAsync(health), "Access-Control-Allow-Origin"));

        // a stopping node's 503 is readable too, Retry-After included
        host.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        using var late = new HttpRequestMessage(HttpMethod.Post, "/hubs/session/negotiate?negotiateVersion=1");
        late.Headers.Add("Origin", App);
        var stopping = await client.SendAsync(late);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, stopping.StatusCode);
        Assert.Equal(App, Header(stopping, "Access-Control-Allow-Origin"));
        Assert.Contains("Retry-After", Header(stopping, "Access-Control-Expose-Headers"));
    }

    [Fact]
    public async Task Without_credentials_the_wildcard_answers_any_origin()
    {
        await using var host = await GatewayHost.StartAsync(settings: new Dictionary<string, string?>(Allowing("*"))
        {
            ["Gateway:Cors:AllowCredentials"] = "false",
        });
        using var client = host.Server.CreateClient();

        var preflight = await client.SendAsync(Preflight("/api/chat", "http://anywhere.test", "POST"));

        Assert.Equal("*", Header(preflight, "Access-Control-Allow-Origin"));
        Assert.Null(Header(preflight, "Access-Control-Allow-Credentials"));
    }

    private static HttpRequestMessage Preflight(string path, string origin, string method, string? headers = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, path);
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", method);
        if (headers is not null)
        {
            request.Headers.Add("Access-Control-Request-Headers", headers);
        }

        return request;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
