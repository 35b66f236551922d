using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Auth;

/// <summary>
/// Tokens of an identity provider (<c>Authentication:Schemes:Bearer</c>), verified through its discovery document and
/// JWKS served over plain HTTP by a <see cref="FakeIdentityProvider"/> in the test process.
/// </summary>
public sealed class IdentityProviderTokenTests
{
    private const string Audience = "opencode-gateway";

    private static Dictionary<string, string?> Settings(FakeIdentityProvider idp, bool withSharedSecret = false) => new()
    {
        ["Authentication:Schemes:Bearer:Authority"] = idp.Issuer,
        ["Authentication:Schemes:Bearer:ValidAudiences:0"] = Audience,
        ["Authentication:Schemes:Bearer:RequireHttpsMetadata"] = "false",
        // the test host configures a shared secret; most of these tests run with the identity provider alone
        ["Gateway:Auth:Jwt:SigningKey"] = withSharedSecret ? TestTokens.DevSigningKey : "",
    };

    private static async Task<(HttpStatusCode Status, string Body)> SendAsync(GatewayHost host, string token, string? workspace = null)
    {
        using var client = host.HttpClient(null);
        using var request = workspace is null
            ? new HttpRequestMessage(HttpMethod.Get, "/api/sessions")
            : new HttpRequestMessage(HttpMethod.Post, "/api/sessions")
            {
                Content = new StringContent(JsonSerializer.Serialize(new { workspace }), Encoding.UTF8, "application/json"),
            };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await client.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<string> RefusalAsync(GatewayHost host, string token)
    {
        var (status, body) = await SendAsync(host, token);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        return body;
    }

    [Fact]
    public async Task Rs256_and_es256_tokens_from_the_jwks_are_accepted_with_the_configured_claims()
    {
        var rsa = SigningKey.Rsa();
        var ec = SigningKey.EcdsaP256();
        await using var idp = await FakeIdentityProvider.StartAsync(rsa, ec);
        var settings = Settings(idp);
        settings["Gateway:Auth:WorkspacesClaim"] = "groups";
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions { Settings = settings });

        var token = idp.Mint(rsa, "auth0|alice", claims: new Dictionary<string, object> { ["groups"] = new[] { "team-a" } });
        var created = await SendAsync(host, token, workspace: "team-a");
        Assert.Equal(HttpStatusCode.Created, created.Status);
        Assert.Contains("\"ownerId\":\"auth0|alice\"", created.Body);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(host, token, workspace: "team-b")).Status);

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(host, idp.Mint(ec, "bob"))).Status);

        // the hub takes the same token from the query string
        await using var hub = await host.ConnectHubAsync(new GatewayHubClientOptions { AccessToken = token, TokenInQuery = true });
        Assert.Equal(1, (await hub.InvokeAsync("ListSessions", new { })).GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task A_rotated_key_is_picked_up_without_a_restart_and_the_removed_one_is_refused()
    {
        var oldKey = SigningKey.Rsa();
        var newKey = SigningKey.Rsa();
        await using var idp = await FakeIdentityProvider.StartAsync(oldKey);
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions { Settings = Settings(idp) });
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(host, idp.Mint(oldKey))).Status);
        var fetchesBefore = idp.JwksRequests;

        idp.Publish(newKey);

        // The unknown kid makes JwtBearer refresh the key set; the refresh may finish after that first request.
        var accepted = false;
        for (var attempt = 0; attempt < 100 && !accepted; attempt++)
        {
            accepted = (await SendAsync(host, idp.Mint(newKey))).Status == HttpStatusCode.OK;
            if (!accepted)
            {
                await Task.Delay(50);
            }
        }

        Assert.True(accepted, "a token of the new key was never accepted");
        Assert.True(idp.JwksRequests > fetchesBefore);
        Assert.Contains("bad signature", await RefusalAsync(host, idp.Mint(oldKey)));
    }

    [Fact]
    public async Task Wrong_issuer_wrong_audience_expired_and_unknown_keys_are_refused()
    {
        var key = SigningKey.Rsa();
        await using var idp = await FakeIdentityProvider.StartAsync(key);
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions { Settings = Settings(idp) });

        Assert.Contains("wrong or missing iss", await RefusalAsync(host, idp.Mint(key, issuer: "https://evil.example/")));
        Assert.Contains("wrong or missing aud", await RefusalAsync(host, idp.Mint(key, audience: "another-app")));
        Assert.Contains("token expired", await RefusalAsync(host, idp.Mint(key, lifetime: TimeSpan.FromMinutes(-2))));
        // a key of the same kid that the JWKS does not hold
        var impostor = SigningKey.Rsa();
        typeof(Microsoft.IdentityModel.Tokens.SecurityKey).GetProperty("KeyId")!.SetValue(impostor.Credentials.Key, key.Kid);
        Assert.Contains("bad signature", await RefusalAsync(host, idp.Mint(impostor)));
        Assert.Contains("user id", await RefusalAsync(host, idp.Mint(key, subject: "")));
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(host, idp.Mint(key))).Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_rs256_public_key_used_as_an_hs256_secret_is_refused(bool withSharedSecret)
    {
        var key = SigningKey.Rsa();
        await using var idp = await FakeIdentityProvider.StartAsync(key);
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions { Settings = Settings(idp, withSharedSecret) });
        var exp = DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds();
        var header = $$"""{"alg":"HS256","typ":"JWT","kid":"{{key.Kid}}"}""";
        var payload = $$"""{"sub":"mallory","iss":"{{idp.Issuer}}","aud":"{{Audience}}","exp":{{exp}}}""";
        var jwk = key.PublicJwk();

        foreach (var secret in new[] { key.PublicKeyDer, Encoding.UTF8.GetBytes(key.PublicKeyPem), Convert.FromBase64String(
            jwk["n"].Replace('-', '+').Replace('_', '/') + new string('=', (4 - jwk["n"].Length % 4) % 4)) })
        {
            var forged = SignHs256(header, payload, secret);
            var refusal = await RefusalAsync(host, forged);
            // alone, the identity provider's scheme takes no HMAC at all; with a shared secret, HS256 goes there and fails
            Assert.Contains(withSharedSecret ? "bad signature" : "alg must be one of RS256", refusal);
        }

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(host, idp.Mint(key))).Status);
        // and the application's own HS256 tokens keep working next to the identity provider
        Assert.Equal(withSharedSecret ? HttpStatusCode.OK : HttpStatusCode.Unauthorized, (await SendAsync(host, TestTokens.Mint("alice"))).Status);
    }

    private static string SignHs256(string header, string payload, byte[] secret)
    {
        var input = TestTokens.Encode(header) + "." + TestTokens.Encode(payload);
        return input + "." + System.Buffers.Text.Base64Url.EncodeToString(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
    }
}
