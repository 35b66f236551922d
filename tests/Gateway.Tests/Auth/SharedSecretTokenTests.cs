using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Auth;

/// <summary>
/// HS256 tokens signed with <c>Gateway:Auth:Jwt:SigningKey</c>, through the running gateway (JwtBearer): every hostile
/// token is refused with 401 and a reason, well-formed ones yield the user and workspaces.
/// </summary>
public sealed class SharedSecretTokenTests(SharedSecretTokenTests.Host fixture) : IClassFixture<SharedSecretTokenTests.Host>
{
    public sealed class Host : IAsyncLifetime
    {
        public GatewayHost Gateway { get; private set; } = null!;

        // Dozens of hostile tokens from one address: the failed-authentication throttle (tested on its own) stays out of the way.
        public async Task InitializeAsync() => Gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["Gateway:Limits:AuthFailuresPerMinute"] = "100000" },
        });

        public async Task DisposeAsync() => await Gateway.DisposeAsync();
    }

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    private static string Payload(string extra = "", long? exp = null) =>
        $$"""{"sub":"alice","exp":{{exp ?? Now.AddMinutes(5).ToUnixTimeSeconds()}}{{extra}}}""";

    private async Task<HttpResponseMessage> SendAsync(string token, string path = "/api/sessions", string? workspace = null)
    {
        using var client = fixture.Gateway.HttpClient(null);
        using var request = workspace is null
            ? new HttpRequestMessage(HttpMethod.Get, path)
            : new HttpRequestMessage(HttpMethod.Post, path)
            {
                Content = new StringContent(JsonSerializer.Serialize(new { workspace }), Encoding.UTF8, "application/json"),
            };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }

    private async Task<string> RefusalAsync(string token)
    {
        var response = await SendAsync(token);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("unauthorized", problem.RootElement.GetProperty("code").GetString());
        return problem.RootElement.GetProperty("detail").GetString()!;
    }

    private async Task AcceptedAsync(string token) => Assert.Equal(HttpStatusCode.OK, (await SendAsync(token)).StatusCode);

    [Fact]
    public async Task A_well_formed_token_yields_the_user_and_workspaces()
    {
        var token = TestTokens.Mint("alice", ["w1", "w2"]);

        var created = await SendAsync(token, workspace: "w2");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Contains("\"ownerId\":\"alice\"", await created.Content.ReadAsStringAsync());

        // not a member of w3: the workspaces came from the token, nothing else
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(token, workspace: "w3")).StatusCode);
    }

    [Fact]
    public async Task A_tampered_payload_or_another_key_fails_the_signature()
    {
        var parts = TestTokens.Mint("alice").Split('.');
        var forged = TestTokens.Encode(Payload(""","ws":["admins"]"""));
        Assert.Contains("bad signature", await RefusalAsync($"{parts[0]}.{forged}.{parts[2]}"));
        Assert.Contains("bad signature", await RefusalAsync(TestTokens.Mint("alice", signingKey: "another-key-of-at-least-32-bytes-length!!")));
    }

    [Fact]
    public async Task Expiry_and_not_before_are_enforced_with_the_clock_skew_of_30_seconds()
    {
        const string header = """{"alg":"HS256","typ":"JWT"}""";
        Assert.Contains("token expired", await RefusalAsync(TestTokens.Sign(header, Payload(exp: Now.AddSeconds(-45).ToUnixTimeSeconds()))));
        await AcceptedAsync(TestTokens.Sign(header, Payload(exp: Now.AddSeconds(-15).ToUnixTimeSeconds())));
        Assert.Contains("not valid yet", await RefusalAsync(TestTokens.Sign(header, Payload($",\"nbf\":{Now.AddSeconds(45).ToUnixTimeSeconds()}"))));
        await AcceptedAsync(TestTokens.Sign(header, Payload($",\"nbf\":{Now.AddSeconds(15).ToUnixTimeSeconds()}")));
    }

    [Fact]
    public async Task Sub_and_exp_are_required()
    {
        const string header = """{"alg":"HS256"}""";
        var exp = Now.AddMinutes(5).ToUnixTimeSeconds();
        Assert.Contains("sub (the user id) is required", await RefusalAsync(TestTokens.Sign(header, $$"""{"exp":{{exp}}}""")));
        Assert.Contains("sub (the user id) is required", await RefusalAsync(TestTokens.Sign(header, $$"""{"sub":"","exp":{{exp}}}""")));
        Assert.Contains("malformed token", await RefusalAsync(TestTokens.Sign(header, $$"""{"sub":["alice"],"exp":{{exp}}}""")));
        Assert.Contains("exp (expiry, seconds since epoch) is required", await RefusalAsync(TestTokens.Sign(header, """{"sub":"alice"}""")));
        Assert.Contains("malformed token", await RefusalAsync(TestTokens.Sign(header, """{"sub":"alice","exp":"tomorrow"}""")));
        // A number is not a user id, even though the claims API reads it as its text.
        Assert.Contains("sub (the user id) is required", await RefusalAsync(TestTokens.Sign(header, $$"""{"sub":12345,"exp":{{exp}}}""")));
        Assert.Contains("malformed token", await RefusalAsync(TestTokens.Sign(header, $$"""{"sub":true,"exp":{{exp}}}""")));
    }

    [Fact]
    public async Task A_token_valid_for_longer_than_the_maximum_lifetime_is_refused()
    {
        const string header = """{"alg":"HS256"}""";
        Assert.Contains("exp is further than Gateway:Auth:Jwt:MaxLifetime (1.00:00:00) from now",
            await RefusalAsync(TestTokens.Sign(header, Payload(exp: new DateTimeOffset(9999, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds()))));
        Assert.Contains("exp is further than", await RefusalAsync(TestTokens.Sign(header, Payload(exp: Now.AddHours(25).ToUnixTimeSeconds()))));
        await AcceptedAsync(TestTokens.Sign(header, Payload(exp: Now.AddHours(23).ToUnixTimeSeconds())));
    }

    [Fact]
    public async Task Only_hs256_is_accepted()
    {
        var payload = TestTokens.Encode(Payload());
        var none = TestTokens.Encode("""{"alg":"none"}""");
        Assert.Contains("alg must be HS256", await RefusalAsync($"{none}.{payload}.{TestTokens.Encode("sig")}"));
        Assert.Contains("alg must be HS256", await RefusalAsync($"{none}.{payload}."));
        Assert.Contains("alg must be HS256", await RefusalAsync(TestTokens.Sign("""{"alg":"RS256","typ":"JWT"}""", Payload())));
        Assert.Contains("alg must be HS256", await RefusalAsync(TestTokens.Sign("""{"alg":"hs256"}""", Payload())));
        Assert.Contains("alg must be HS256", await RefusalAsync(TestTokens.Sign("""{"typ":"JWT"}""", Payload())));
        // a duplicated member: the last one counts (none), never the one that was signed for
        Assert.Contains("alg must be HS256", await RefusalAsync(TestTokens.Sign("""{"alg":"HS256","alg":"none"}""", Payload())));
        Assert.Contains("typ must be JWT when present", await RefusalAsync(TestTokens.Sign("""{"alg":"HS256","typ":"JWE"}""", Payload())));
        Assert.Contains("critical header extensions", await RefusalAsync(TestTokens.Sign("""{"alg":"HS256","crit":["exp"]}""", Payload())));
        // the same claims with alg HS256 pass: the refusals above are the header's doing
        await AcceptedAsync(TestTokens.Sign("""{"alg":"HS256"}""", Payload()));
    }

    [Fact]
    public async Task Oversized_tokens_are_refused_before_parsing()
    {
        var token = TestTokens.Sign("""{"alg":"HS256"}""", Payload($",\"pad\":\"{new string('a', 9000)}\""));
        Assert.Contains("token longer than 8192 characters", await RefusalAsync(token));
    }

    [Fact]
    public async Task Segments_must_be_base64url_of_three_parts()
    {
        var parts = TestTokens.Mint("alice").Split('.');
        Assert.Contains("malformed token", await RefusalAsync($"{parts[0]}=.{parts[1]}.{parts[2]}"));
        Assert.Contains("malformed token", await RefusalAsync($"{parts[0]}.{parts[1].Replace('-', '+').Replace('_', '/')}+.{parts[2]}"));
        Assert.Contains("bad signature", await RefusalAsync($"{parts[0]}.{parts[1]}.{parts[2]}!"));
        // the signature's last character with non-zero unused bits decodes to the same bytes: still refused
        Assert.Contains("bad signature", await RefusalAsync($"{parts[0]}.{parts[1]}.{parts[2][..^1]}{NonCanonical(parts[2][^1])}"));
        Assert.Contains("malformed token", await RefusalAsync($"{parts[0]}.{parts[1]}.{parts[2]}.extra"));
        Assert.Contains("malformed token", await RefusalAsync($"{parts[0]}.{parts[1]}"));
        Assert.Contains("malformed token", await RefusalAsync("not-a-token"));
        await AcceptedAsync(string.Join('.', parts));
    }

    // A last character that decodes to the same bytes but with non-zero unused bits.
    private static char NonCanonical(char last)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        return alphabet[alphabet.IndexOf(last) | 1];
    }

    [Fact]
    public async Task Workspaces_must_be_an_array_of_at_most_256_ids()
    {
        const string header = """{"alg":"HS256"}""";
        Assert.Contains("ws must be an array", await RefusalAsync(TestTokens.Sign(header, Payload(""","ws":"team-a" """))));
        Assert.Contains("ws must be an array", await RefusalAsync(TestTokens.Sign(header, Payload(""","ws":["a",7]"""))));
        Assert.Contains("ws must be an array", await RefusalAsync(TestTokens.Sign(header, Payload(""","ws":["a\u0001b"]"""))));
        var many = JsonSerializer.Serialize(Enumerable.Range(0, 257).Select(i => $"w{i}"));
        Assert.Contains("ws must be an array", await RefusalAsync(TestTokens.Sign(header, Payload($",\"ws\":{many}"))));
        await AcceptedAsync(TestTokens.Sign(header, Payload(""","ws":[]""")));
    }

    [Fact]
    public async Task A_query_token_counts_on_hub_and_chat_paths_only()
    {
        using var client = fixture.Gateway.HttpClient(null);
        var token = TestTokens.Mint("alice");

        var sessions = await client.GetAsync($"/api/sessions?access_token={token}");
        Assert.Equal(HttpStatusCode.Unauthorized, sessions.StatusCode);
        Assert.Contains("only for /hubs/", await sessions.Content.ReadAsStringAsync());

        // /api/chat reads it (and then complains about the missing session id, not about authentication)
        var chat = await client.GetAsync($"/api/chat?access_token={token}");
        Assert.Equal(HttpStatusCode.BadRequest, chat.StatusCode);
        Assert.Contains("sessionId", await chat.Content.ReadAsStringAsync());

        var expired = await client.GetAsync($"/api/chat?access_token={TestTokens.Mint("alice", lifetime: TimeSpan.FromMinutes(-5))}");
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Contains("token expired", await expired.Content.ReadAsStringAsync());
    }
}

/// <summary><c>Gateway:Auth:Jwt:Issuer</c>/<c>Audience</c> and the configurable claims, each on a gateway of its own.</summary>
public sealed class SharedSecretTokenSettingsTests
{
    [Fact]
    public async Task Issuer_and_audience_are_checked_when_configured()
    {
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = new Dictionary<string, string?>
            {
                ["Gateway:Auth:Jwt:Issuer"] = "https://app.example",
                ["Gateway:Auth:Jwt:Audience"] = "gateway",
            },
        });

        async Task<(HttpStatusCode Status, string Body)> Send(string token)
        {
            using var client = host.HttpClient(null);
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var response = await client.GetAsync("/api/sessions");
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        Assert.Contains("wrong or missing iss", (await Send(TestTokens.Mint("alice", audience: "gateway"))).Body);
        Assert.Contains("wrong or missing iss", (await Send(TestTokens.Mint("alice", issuer: "https://evil.example", audience: "gateway"))).Body);
        Assert.Contains("wrong or missing aud", (await Send(TestTokens.Mint("alice", issuer: "https://app.example", audience: "other"))).Body);
        Assert.Contains("wrong or missing aud", (await Send(TestTokens.Mint("alice", issuer: "https://app.example"))).Body);
        Assert.Equal(HttpStatusCode.OK, (await Send(TestTokens.Mint("alice", issuer: "https://app.example", audience: "gateway"))).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(TestTokens.Sign("""{"alg":"HS256"}""",
            $$"""{"sub":"alice","exp":{{exp}},"iss":"https://app.example","aud":["x","gateway"]}"""))).Status);
    }

    [Fact]
    public async Task The_user_id_and_workspaces_claims_are_configurable()
    {
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = new Dictionary<string, string?>
            {
                ["Gateway:Auth:UserIdClaim"] = "uid",
                ["Gateway:Auth:WorkspacesClaim"] = "https://app.example/teams",
            },
        });
        using var client = host.HttpClient(null);
        var exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestTokens.Sign("""{"alg":"HS256"}""",
            $$"""{"sub":"not-me","uid":"carol","exp":{{exp}},"ws":["w-ignored"],"https://app.example/teams":["team-a"]}"""));

        var created = await client.PostAsync("/api/sessions", new StringContent("""{"workspace":"team-a"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Contains("\"ownerId\":\"carol\"", await created.Content.ReadAsStringAsync());
        var ignored = await client.PostAsync("/api/sessions", new StringContent("""{"workspace":"w-ignored"}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, ignored.StatusCode);
    }
}
