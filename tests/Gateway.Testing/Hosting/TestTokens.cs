using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace OpencodeGateway.Testing;

/// <summary>
/// Mints HS256 tokens the gateway accepts, for tests: connect to the hub with <c>?access_token=</c> or call the API
/// with <c>Authorization: Bearer</c>. <see cref="DevSigningKey"/> is the key of <c>appsettings.Development.json</c>;
/// tests that configure their own key pass it.
/// </summary>
public static class TestTokens
{
    /// <summary>The signing key of <c>src/Gateway/appsettings.Development.json</c>.</summary>
    public const string DevSigningKey = "dev-only-signing-key-never-use-in-production-0123456789";

    /// <summary>A valid token for <paramref name="userId"/>, member of <paramref name="workspaces"/>.</summary>
    public static string Mint(string userId, IEnumerable<string>? workspaces = null, string signingKey = DevSigningKey,
        TimeSpan? lifetime = null, string? issuer = null, string? audience = null, DateTimeOffset? now = null)
    {
        var at = now ?? DateTimeOffset.UtcNow;
        var payload = new Dictionary<string, object>
        {
            ["sub"] = userId,
            ["iat"] = at.ToUnixTimeSeconds(),
            ["exp"] = (at + (lifetime ?? TimeSpan.FromHours(1))).ToUnixTimeSeconds(),
        };
        if (workspaces is not null)
        {
            payload["ws"] = workspaces.ToArray();
        }

        if (issuer is not null)
        {
            payload["iss"] = issuer;
        }

        if (audience is not null)
        {
            payload["aud"] = audience;
        }

        return Sign("""{"alg":"HS256","typ":"JWT"}""", JsonSerializer.Serialize(payload), signingKey);
    }

    /// <summary>Signs any header and payload JSON with HMAC-SHA256 (for hostile-token tests).</summary>
    public static string Sign(string headerJson, string payloadJson, string signingKey = DevSigningKey)
    {
        var signingInput = Encode(headerJson) + "." + Encode(payloadJson);
        var signature = HMACSHA256.HashData(Encoding.UTF8.GetBytes(signingKey), Encoding.ASCII.GetBytes(signingInput));
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    public static string Encode(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));
}
