using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;

namespace OpencodeGateway.Auth;

/// <summary>
/// The gateway's authentication schemes. <see cref="Default"/> is a policy scheme that forwards each request to the
/// one handler its credential belongs to, so a credential that is present but wrong fails the request and never falls
/// through to another kind.
/// </summary>
public static class GatewayAuthenticationSchemes
{
    /// <summary>The default scheme: forwards to one of the others.</summary>
    public const string Default = "Gateway";

    /// <summary>JwtBearer, HS256 with <c>Gateway:Auth:Jwt:SigningKey</c>: tokens minted by the application.</summary>
    public const string SharedSecret = "GatewayJwt";

    /// <summary>JwtBearer of an identity provider (OIDC discovery + JWKS), configured in <c>Authentication:Schemes:Bearer</c>.</summary>
    public const string IdentityProvider = JwtBearerDefaults.AuthenticationScheme;

    /// <summary>API keys, dev mode's debug header, and the refusal of malformed or unusable credentials.</summary>
    public const string Credentials = "GatewayCredentials";

    public const string ApiKeyHeader = "X-Api-Key";
    public const string QueryTokenName = "access_token";

    /// <summary>
    /// True for paths whose clients may pass the token in the query string (WebSocket, EventSource and SSE clients
    /// cannot set headers): <c>/hubs/…</c>, <c>/api/chat[/…]</c> and <c>/api/ai-sdk/…</c>.
    /// </summary>
    public static bool AcceptsQueryToken(string? path) =>
        path is not null && (path.StartsWith("/hubs/", StringComparison.OrdinalIgnoreCase)
            || path.Equals("/api/chat", StringComparison.OrdinalIgnoreCase)
            || path.StartsWith("/api/chat/", StringComparison.OrdinalIgnoreCase)
            || path.StartsWith("/api/ai-sdk/", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The bearer token of a well-formed request: one <c>Authorization: Bearer</c> header, or (without that header, on
    /// a path that <see cref="AcceptsQueryToken"/>) one non-empty <c>access_token</c> query parameter. Null otherwise:
    /// the <see cref="Credentials"/> handler then says what is wrong.
    /// </summary>
    internal static string? BearerToken(HttpRequest request)
    {
        var authorization = request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            return authorization.Count == 1 && authorization[0] is { } value
                && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && value.Length > "Bearer ".Length
                ? value["Bearer ".Length..].Trim()
                : null;
        }

        return AcceptsQueryToken(request.Path.Value) && request.Query.TryGetValue(QueryTokenName, out var tokens)
            && tokens.Count == 1 && !string.IsNullOrEmpty(tokens[0])
            ? tokens[0]
            : null;
    }
}

/// <summary>Chooses the handler of a request (the <see cref="GatewayAuthenticationSchemes.Default"/> policy scheme's selector).</summary>
internal sealed class GatewaySchemeSelector(IOptions<GatewayAuthOptions> options, IOptionsMonitor<JwtBearerOptions> jwtBearer)
{
    private readonly bool _sharedSecret = options.Value.Jwt.KeyBytes() is not null;
    private readonly int _maxTokenLength = options.Value.Jwt.MaxTokenLength;

    public string Select(HttpContext context)
    {
        var request = context.Request;
        if (request.Headers.ContainsKey(GatewayAuthenticationSchemes.ApiKeyHeader)
            || GatewayAuthenticationSchemes.BearerToken(request) is not { } token)
        {
            return GatewayAuthenticationSchemes.Credentials;
        }

        var identityProvider = jwtBearer.Get(GatewayAuthenticationSchemes.IdentityProvider).ConfigurationManager is not null;
        // Each JwtBearer scheme accepts only its own algorithms (HS256 / asymmetric), so the unverified alg only picks
        // which one refuses or accepts the token: an HS256 token never meets an identity provider's public key.
        if (identityProvider && (!_sharedSecret || (token.Length <= _maxTokenLength && !IsHs256(token))))
        {
            return GatewayAuthenticationSchemes.IdentityProvider;
        }

        return _sharedSecret ? GatewayAuthenticationSchemes.SharedSecret : GatewayAuthenticationSchemes.Credentials;
    }

    private static bool IsHs256(string token)
    {
        try
        {
            return new JsonWebToken(token).Alg == "HS256";
        }
        catch (ArgumentException)
        {
            return false; // malformed: the identity provider's scheme refuses it like any other
        }
    }
}
