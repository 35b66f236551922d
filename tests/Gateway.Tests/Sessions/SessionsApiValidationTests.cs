using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Sessions;

public sealed class SessionsApiValidationTests : IAsyncLifetime
{
    private GatewayHost _host = null!;
    private HttpClient _alice = null!;
    private string _id = "";

    public async Task InitializeAsync()
    {
        _host = await GatewayHost.StartAsync();
        _alice = _host.HttpClient("alice");
        var created = await _alice.PostAsJsonAsync("/api/sessions", new { title = "t", metadata = new { a = new { b = 1, c = 2 }, d = 3 } });
        _id = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("session").GetProperty("sessionId").GetString()!;
    }

    public async Task DisposeAsync()
    {
        _alice.Dispose();
        await _host.DisposeAsync();
    }

    private async Task<JsonElement> PatchAsync(string json, HttpStatusCode expected, string contentType = "application/merge-patch+json")
    {
        var response = await _alice.PatchAsync($"/api/sessions/{_id}", new StringContent(json, Encoding.UTF8, contentType));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    private static void AssertFieldError(JsonElement problem, string code, string field)
    {
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out var messages), problem.ToString());
        Assert.True(messages.GetArrayLength() > 0);
    }

    [Fact]
    public async Task Metadata_patches_merge_null_deletes_and_null_metadata_clears()
    {
        var merged = await PatchAsync("""{"metadata":{"a":{"b":null,"e":[1]},"d":null,"f":"new"}}""", HttpStatusCode.OK);
        Assert.Equal("""{"a":{"c":2,"e":[1]},"f":"new"}""", merged.GetProperty("metadata").GetRawText());

        var cleared = await PatchAsync("""{"metadata":null,"tags":["x","x","y"]}""", HttpStatusCode.OK, "application/json");
        Assert.Equal("{}", cleared.GetProperty("metadata").GetRawText());
        Assert.Equal(["x", "y"], cleared.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task Limits_and_shapes_are_enforced_with_errors_naming_the_field()
    {
        var big = new string('x', 16 * 1024);
        AssertFieldError(await PatchAsync($$$"""{"metadata":{"big":"{{{big}}}"}}""", HttpStatusCode.RequestEntityTooLarge), "payload_too_large", "metadata");
        var tags = string.Join(",", Enumerable.Range(0, 33).Select(i => $"\"t{i}\""));
        AssertFieldError(await PatchAsync($$"""{"tags":[{{tags}}]}""", HttpStatusCode.RequestEntityTooLarge), "payload_too_large", "tags");
        AssertFieldError(await PatchAsync($$"""{"tags":["ok","{{new string('t', 65)}}"]}""", HttpStatusCode.RequestEntityTooLarge), "payload_too_large", "tags[1]");
        AssertFieldError(await PatchAsync("""{"tags":"x"}""", HttpStatusCode.BadRequest), "bad_request", "tags");
        AssertFieldError(await PatchAsync("""{"metadata":[1]}""", HttpStatusCode.BadRequest), "bad_request", "metadata");
        AssertFieldError(await PatchAsync("""{"owner":"mallory"}""", HttpStatusCode.BadRequest), "bad_request", "owner");
        AssertFieldError(await PatchAsync("""{"title":"   "}""", HttpStatusCode.BadRequest), "bad_request", "title");
        AssertFieldError(await PatchAsync("""{"title":""", HttpStatusCode.BadRequest), "bad_request", "body");
        AssertFieldError(await PatchAsync("""{"title":"x"}""", HttpStatusCode.BadRequest, "text/plain"), "bad_request", "body");

        // nothing of that was stored
        var details = JsonDocument.Parse(await _alice.GetStringAsync($"/api/sessions/{_id}")).RootElement.GetProperty("session");
        Assert.Equal("""{"a":{"b":1,"c":2},"d":3}""", details.GetProperty("metadata").GetRawText());
        Assert.Equal(0, details.GetProperty("tags").GetArrayLength());
    }

    [Fact]
    public async Task Listing_pages_with_an_opaque_cursor_and_rejects_bad_query_values()
    {
        for (var i = 0; i < 4; i++)
        {
            await _alice.PostAsJsonAsync("/api/sessions", new { title = $"s{i}" });
        }

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = JsonDocument.Parse(await _alice.GetStringAsync("/api/sessions?limit=2" + (cursor is null ? "" : $"&cursor={cursor}"))).RootElement;
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("sessionId").GetString()!));
            cursor = page.GetProperty("nextCursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal(5, seen.Distinct().Count());
        Assert.Equal(5, seen.Count);

        foreach (var (query, field) in new[] { ("limit=0", "limit"), ("limit=x", "limit"), ("cursor=bm9wZQ", "cursor"), ("archived=maybe", "archived") })
        {
            var response = await _alice.GetAsync("/api/sessions?" + query);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            AssertFieldError(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement, "bad_request", field);
        }
    }
}
