using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Api;

/// <summary><c>/openapi/v1.json</c> against the endpoints the gateway really maps, and problem details.</summary>
public sealed class OpenApiDocumentTests
{
    private static string Normalize(string path) => "/" + path.Trim('/');

    [Fact]
    public async Task The_document_lists_exactly_the_mapped_api_endpoints_with_their_methods()
    {
        await using var host = await GatewayHost.StartAsync();
        using var anonymous = host.HttpClient(null);

        // A forged Host header is not echoed as a server: the document's paths are relative.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json") { Headers = { Host = "evil.example:666" } };
        var response = await anonymous.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("evil.example", text, StringComparison.Ordinal);
        using var document = JsonDocument.Parse(text);
        var documented = document.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(path => path.Value.EnumerateObject()
                .Where(op => op.Name is "get" or "post" or "put" or "patch" or "delete")
                .Select(op => $"{op.Name.ToUpperInvariant()} {Normalize(path.Name)}"))
            .Order().ToList();
        var mapped = host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith("/api/", StringComparison.Ordinal) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => $"{m} {Normalize(e.RoutePattern.RawText!)}"))
            .Distinct().Order().ToList();

        Assert.Contains("POST /api/sessions", mapped);
        Assert.Contains("GET /api/chat", mapped);
        Assert.Equal(mapped, documented);
        // request and answer shapes come from the contract types
        var create = document.RootElement.GetProperty("paths").EnumerateObject().First(p => Normalize(p.Name) == "/api/sessions").Value.GetProperty("post");
        Assert.True(create.GetProperty("responses").TryGetProperty("201", out _));
        Assert.True(create.TryGetProperty("requestBody", out _));
    }

    [Fact]
    public async Task Errors_are_problem_details_with_a_code_even_for_an_event_stream_client()
    {
        await using var host = await GatewayHost.StartAsync();
        using var client = host.HttpClient("alice");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/chat?sessionId=not-a-session");
        request.Headers.Accept.ParseAdd("text/event-stream");

        var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("bad_request", problem.RootElement.GetProperty("code").GetString());
        Assert.Equal(400, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Equal("Bad Request", problem.RootElement.GetProperty("title").GetString());
        Assert.Equal("/api/chat", problem.RootElement.GetProperty("instance").GetString());
        Assert.True(problem.RootElement.GetProperty("errors").TryGetProperty("sessionId", out _));
    }
}
