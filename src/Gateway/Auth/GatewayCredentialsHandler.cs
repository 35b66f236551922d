using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Auth;

/// <summary>
/// The <see cref="GatewayAuthenticationSchemes.Credentials"/> scheme: <c>X-Api-Key</c>; with
/// <c>Gateway:Auth:DevMode</c>, the <c>X-Debug-User</c> header; and the refusal, with a reason, of credentials no
/// other handler takes (a malformed <c>Authorization</c> header, <c>access_token</c> outside the paths that allow it,
/// a bearer token when no token kind is configured). Tokens themselves are JwtBearer's.
/// </summary>
internal sealed class GatewayCredentialsHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> schemeOptions,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    IOptions<GatewayAuthOptions> authOptions)
    : AuthenticationHandler<AuthenticationSchemeOptions>(schemeOptions, loggerFactory, encoder)
{
    public const string DebugUserHeader = "X-Debug-User";
    public const string DebugWorkspacesHeader = "X-Debug-Workspaces";
    public const string DebugAdminHeader = "X-Debug-Admin";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var result = Authenticate();
        if (result.Failure is not null)
        {
            AuthenticationLog.AuthenticationFailed(Logger, Request.Path, result.Failure.Message);
        }

        return Task.FromResult(result);
    }

    private AuthenticateResult Authenticate()
    {
        var options = authOptions.Value;
        if (Request.Headers.TryGetValue(GatewayAuthenticationSchemes.ApiKeyHeader, out var apiKeys))
        {
            return apiKeys.Count == 1 && !string.IsNullOrEmpty(apiKeys[0])
                ? AuthenticateApiKey(apiKeys[0]!, options)
                : AuthenticateResult.Fail("one X-Api-Key header with a value is required");
        }

        var authorization = Request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            return GatewayAuthenticationSchemes.BearerToken(Request) is null
                ? AuthenticateResult.Fail("the Authorization header must be 'Bearer <token>'")
                : NoTokenKind();
        }

        if (Request.Query.TryGetValue(GatewayAuthenticationSchemes.QueryTokenName, out _))
        {
            if (!GatewayAuthenticationSchemes.AcceptsQueryToken(Request.Path.Value))
            {
                return AuthenticateResult.Fail("access_token in the query string is accepted only for /hubs/, /api/chat and /api/ai-sdk/; use the Authorization header");
            }

            return GatewayAuthenticationSchemes.BearerToken(Request) is null
                ? AuthenticateResult.Fail("one access_token query parameter with a value is required")
                : NoTokenKind();
        }

        if (options.DevMode && Request.Headers.TryGetValue(DebugUserHeader, out var debugUser))
        {
            return AuthenticateDebugUser(debugUser.ToString());
        }

        return AuthenticateResult.NoResult();
    }

    private static AuthenticateResult NoTokenKind() =>
        AuthenticateResult.Fail($"bearer tokens are not accepted (neither {GatewayAuthOptions.SectionName}:Jwt:SigningKey nor {GatewayAuthOptions.IdentityProviderSection}:Authority is configured)");

    private static AuthenticateResult AuthenticateApiKey(string key, GatewayAuthOptions options)
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
        return AuthenticateResult.Success(new AuthenticationTicket(user.ToPrincipal("apikey", GatewayAuthenticationSchemes.Credentials),
            GatewayAuthenticationSchemes.Credentials));
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
        return AuthenticateResult.Success(new AuthenticationTicket(user.ToPrincipal("dev", GatewayAuthenticationSchemes.Credentials),
            GatewayAuthenticationSchemes.Credentials));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var failure = (await HandleAuthenticateOnceSafeAsync()).Failure;
        Response.Headers.WWWAuthenticate = failure is null ? "Bearer" : "Bearer error=\"invalid_token\"";
        await ProblemWriter.WriteAsync(Context, StatusCodes.Status401Unauthorized, GatewayErrorCodes.Unauthorized,
            $"Authentication failed: {failure?.Message ?? "authentication is required"}.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        ProblemWriter.WriteForbiddenAsync(Context);
}
