using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Api;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Auth.Internal;

namespace OpencodeGateway.Auth;

/// <summary>
/// The gateway's one authentication scheme. In order: <c>X-Api-Key</c>; <c>Authorization: Bearer</c> (HS256 JWT);
/// the <c>access_token</c> query parameter, only under <c>/hubs/</c> and <c>/api/chat</c> (WebSocket and SSE clients
/// cannot set headers); with <c>Gateway:Auth:DevMode</c>, the <c>X-Debug-User</c> header. A credential that is
/// present but wrong fails the request; it never falls through to the next kind.
/// </summary>
internal sealed class GatewayAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    IOptions<GatewayAuthOptions> authOptions,
    Hs256JwtValidator jwt)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string SchemeName = "Gateway";
    public const string ApiKeyHeader = "X-Api-Key";
    public const string DebugUserHeader = "X-Debug-User";
    public const string DebugWorkspacesHeader = "X-Debug-Workspaces";
    public const string DebugAdminHeader = "X-Debug-Admin";
    public const string QueryTokenName = "access_token";
    private const string FailureKey = "gateway:auth-failure";

    /// <summary>True for paths whose clients may pass the token in the query string: <c>/hubs/…</c> and <c>/api/chat[/…]</c>.</summary>
    public static bool AcceptsQueryToken(string? path) =>
        path is not null && (path.StartsWith("/hubs/", StringComparison.OrdinalIgnoreCase)
            || path.Equals("/api/chat", StringComparison.OrdinalIgnoreCase)
            || path.StartsWith("/api/chat/", StringComparison.OrdinalIgnoreCase));

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var result = Authenticate();
        if (result.Failure is not null)
        {
            Context.Items[FailureKey] = result.Failure.Message;
            AuthLog.AuthenticationFailed(Logger, Request.Path, result.Failure.Message);
        }

        return Task.FromResult(result);
    }

    private AuthenticateResult Authenticate()
    {
        var options = authOptions.Value;
        if (Request.Headers.TryGetValue(ApiKeyHeader, out var apiKeys))
        {
            return apiKeys.Count == 1 && !string.IsNullOrEmpty(apiKeys[0])
                ? AuthenticateApiKey(apiKeys[0]!, options)
                : AuthenticateResult.Fail("one X-Api-Key header with a value is required");
        }

        var authorization = Request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            var value = authorization.Count == 1 ? authorization[0] : null;
            if (value is null || !value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                return AuthenticateResult.Fail("the Authorization header must be 'Bearer <token>'");
            }

            return AuthenticateToken(value["Bearer ".Length..].Trim());
        }

        if (Request.Query.TryGetValue(QueryTokenName, out var queryTokens))
        {
            if (!AcceptsQueryToken(Request.Path.Value))
            {
                return AuthenticateResult.Fail("access_token in the query string is accepted only for /hubs/ and /api/chat; use the Authorization header");
            }

            return queryTokens.Count == 1 && !string.IsNullOrEmpty(queryTokens[0])
                ? AuthenticateToken(queryTokens[0]!)
                : AuthenticateResult.Fail("one access_token query parameter with a value is required");
        }

        if (options.DevMode && Request.Headers.TryGetValue(DebugUserHeader, out var debugUser))
        {
            return AuthenticateDebugUser(debugUser.ToString());
        }

        return AuthenticateResult.NoResult();
    }

    private AuthenticateResult AuthenticateToken(string token)
    {
        var validation = jwt.Validate(token);
        if (validation.Identity is not { } identity)
        {
            return AuthenticateResult.Fail(validation.Failure!);
        }

        var user = new GatewayUser(identity.UserId, identity.Workspaces, IsAdmin: false);
        // ExpiresUtc lets SignalR close a connection when its token expires (CloseOnAuthenticationExpiration).
        var properties = new AuthenticationProperties { ExpiresUtc = identity.ExpiresAt };
        return AuthenticateResult.Success(new AuthenticationTicket(user.ToPrincipal("jwt", SchemeName), properties, SchemeName));
    }

    private AuthenticateResult AuthenticateApiKey(string key, GatewayAuthOptions options)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        ApiKeyOptions? match = null;
        foreach (var candidate in options.ApiKeys)
        {
            // Compare every configured key, in constant time, so timing tells nothing about which (if any) matched.
            if (CryptographicOperations.FixedTimeEquals(hash, Convert.FromHexString(candidate.KeyHash)))
            {
                match = candidate;
            }
        }

        if (match is null)
        {
            return AuthenticateResult.Fail("unknown API key");
        }

        var user = new GatewayUser(match.UserId ?? $"apikey:{match.Name}", match.Workspaces, match.Admin);
        return AuthenticateResult.Success(new AuthenticationTicket(user.ToPrincipal("apikey", SchemeName), SchemeName));
    }

    private AuthenticateResult AuthenticateDebugUser(string userId)
    {
        if (!Identifiers.IsValidUserId(userId))
        {
            return AuthenticateResult.Fail($"{DebugUserHeader} {Identifiers.UserIdRule}");
        }

        var workspaces = Request.Headers[DebugWorkspacesHeader].ToString()
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (workspaces.Any(w => !Identifiers.IsValidWorkspace(w)))
        {
            return AuthenticateResult.Fail($"{DebugWorkspacesHeader} entries {Identifiers.WorkspaceRule}");
        }

        var admin = string.Equals(Request.Headers[DebugAdminHeader].ToString(), "true", StringComparison.OrdinalIgnoreCase);
        var user = new GatewayUser(userId, workspaces, admin);
        return AuthenticateResult.Success(new AuthenticationTicket(user.ToPrincipal("dev", SchemeName), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var reason = Context.Items.TryGetValue(FailureKey, out var failure) ? (string)failure! : "authentication is required";
        Response.Headers.WWWAuthenticate = Context.Items.ContainsKey(FailureKey) ? "Bearer error=\"invalid_token\"" : "Bearer";
        await ProblemWriter.WriteAsync(Context, StatusCodes.Status401Unauthorized, GatewayErrorCodes.Unauthorized,
            $"Authentication failed: {reason}.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ProblemWriter.WriteAsync(Context, StatusCodes.Status403Forbidden, GatewayErrorCodes.Forbidden,
            "The caller may not do this.");
}
