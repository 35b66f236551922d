using System.Text.Json;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Auth.Internal;

/// <summary>
/// What the gateway adds to JwtBearer, for both token schemes: the token from the query string where allowed, the
/// size limit, the user and workspaces from the configured claims (with their shapes checked), refusals that name the
/// reason, and problem-details answers.
/// </summary>
internal sealed class GatewayJwtBearerEvents(IOptions<GatewayAuthOptions> options, TimeProvider time, ILogger<GatewayJwtBearerEvents> logger)
    : JwtBearerEvents
{
    public override Task MessageReceived(MessageReceivedContext context)
    {
        // The scheme selector sent this request here because it carries exactly one well-formed bearer token.
        var token = GatewayAuthenticationSchemes.BearerToken(context.Request);
        var max = options.Value.Jwt.MaxTokenLength;
        if (token is null)
        {
            context.NoResult();
        }
        else if (token.Length > max)
        {
            Refuse(context, $"token longer than {max} characters");
        }
        else
        {
            context.Token = token;
        }

        return Task.CompletedTask;
    }

    public override Task AuthenticationFailed(AuthenticationFailedContext context)
    {
        var scheme = context.Scheme.Name;
        var reason = Describe(context.Exception, scheme);
        // The library reports a token signed with another algorithm as "no key validated it": name the algorithm instead.
        if (context.Exception is SecurityTokenInvalidSignatureException
            && GatewayAuthenticationSchemes.BearerToken(context.Request) is { } token && !HasAcceptedAlgorithm(token, scheme))
        {
            reason = AlgorithmRule(scheme);
        }

        Refuse(context, reason);
        return Task.CompletedTask;
    }

    public override Task TokenValidated(TokenValidatedContext context)
    {
        var settings = options.Value;
        var token = (JsonWebToken)context.SecurityToken;
        if (token.TryGetHeaderValue<object>("crit", out _))
        {
            Refuse(context, "critical header extensions are not supported");
        }
        else if (context.Scheme.Name == GatewayAuthenticationSchemes.SharedSecret
                 && token.ValidTo - time.GetUtcNow().UtcDateTime > settings.Jwt.MaxLifetime + settings.Jwt.ClockSkew)
        {
            Refuse(context, $"exp is further than Gateway:Auth:Jwt:MaxLifetime ({settings.Jwt.MaxLifetime}) from now");
        }
        else if (ReadUserId(token, settings.UserIdClaim) is not { } user)
        {
            Refuse(context, $"{settings.UserIdClaim} (the user id) is required and {Identifiers.UserIdRule}");
        }
        else if (ReadWorkspaces(token, settings.WorkspacesClaim) is not { } workspaces)
        {
            Refuse(context, $"{settings.WorkspacesClaim} must be an array of at most {JwtOptions.MaxWorkspaces} workspace ids that {Identifiers.WorkspaceRule}");
        }
        else
        {
            // ExpiresUtc stays as JwtBearer set it: SignalR closes the connection when the token expires.
            var method = context.Scheme.Name == GatewayAuthenticationSchemes.IdentityProvider ? "oidc" : "jwt";
            context.Principal = new GatewayUser(user, workspaces, IsAdmin: false).ToPrincipal(method, context.Scheme.Name);
        }

        return Task.CompletedTask;
    }

    public override async Task Challenge(JwtBearerChallengeContext context)
    {
        context.HandleResponse();
        var failure = context.AuthenticateFailure;
        context.Response.Headers.WWWAuthenticate = failure is null ? "Bearer" : "Bearer error=\"invalid_token\"";
        await ProblemWriter.WriteAsync(context.HttpContext, StatusCodes.Status401Unauthorized, GatewayErrorCodes.Unauthorized,
            $"Authentication failed: {failure?.Message ?? "authentication is required"}.");
    }

    public override Task Forbidden(ForbiddenContext context) => ProblemWriter.WriteForbiddenAsync(context.HttpContext);

    private void Refuse(ResultContext<JwtBearerOptions> context, string reason)
    {
        AuthenticationLog.AuthenticationFailed(logger, context.Request.Path, reason);
        context.Fail(reason);
    }

    /// <summary>
    /// The user id: one JSON string (a number or an array is refused) that <see cref="Identifiers.IsValidUserId"/>. Read
    /// from the payload itself: the token API turns a numeric <c>sub</c> into its text.
    /// </summary>
    private static string? ReadUserId(JsonWebToken token, string claim)
    {
        using var payload = JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(token.EncodedPayload));
        return payload.RootElement.TryGetProperty(claim, out var value) && value.ValueKind == JsonValueKind.String
            && value.GetString() is { } user && Identifiers.IsValidUserId(user) ? user : null;
    }

    /// <summary>The workspaces claim: absent (none), or an array of workspace ids; null when it has another shape.</summary>
    private static IReadOnlyList<string>? ReadWorkspaces(JsonWebToken token, string claim)
    {
        if (!token.TryGetPayloadValue<object>(claim, out var value))
        {
            return [];
        }

        if (value is not JsonElement { ValueKind: JsonValueKind.Array } array || array.GetArrayLength() > JwtOptions.MaxWorkspaces)
        {
            return null;
        }

        var workspaces = new List<string>(array.GetArrayLength());
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || item.GetString() is not { } workspace || !Identifiers.IsValidWorkspace(workspace))
            {
                return null;
            }

            workspaces.Add(workspace);
        }

        return workspaces.Distinct(StringComparer.Ordinal).ToList();
    }

    private static string AlgorithmRule(string scheme) => scheme == GatewayAuthenticationSchemes.SharedSecret
        ? "alg must be HS256"
        : $"alg must be one of {string.Join(", ", JwtBearerSchemesSetup.AsymmetricAlgorithms)}";

    private static bool HasAcceptedAlgorithm(string token, string scheme)
    {
        try
        {
            var alg = new JsonWebToken(token).Alg;
            return scheme == GatewayAuthenticationSchemes.SharedSecret
                ? alg == SecurityAlgorithms.HmacSha256
                : JwtBearerSchemesSetup.AsymmetricAlgorithms.Contains(alg);
        }
        catch (ArgumentException)
        {
            return true; // unreadable: the signature failure stands
        }
    }

    /// <summary>A short reason for a refused token (the library's messages carry IDX codes and, at times, the token).</summary>
    internal static string Describe(Exception exception, string scheme) => exception switch
    {
        AggregateException { InnerExceptions.Count: > 0 } aggregate => Describe(aggregate.InnerExceptions[0], scheme),
        SecurityTokenExpiredException => "token expired",
        SecurityTokenNotYetValidException => "token not valid yet (nbf)",
        SecurityTokenNoExpirationException => "exp (expiry, seconds since epoch) is required",
        SecurityTokenInvalidLifetimeException => "exp or nbf is invalid",
        SecurityTokenInvalidAudienceException => "wrong or missing aud",
        SecurityTokenInvalidIssuerException => "wrong or missing iss",
        SecurityTokenInvalidAlgorithmException => AlgorithmRule(scheme),
        SecurityTokenInvalidTypeException => "typ must be JWT when present",
        // HS256 with a wrong secret ends here too ("no key validated the signature").
        SecurityTokenSignatureKeyNotFoundException => scheme == GatewayAuthenticationSchemes.SharedSecret
            ? "bad signature"
            : "bad signature, or no signing key of the identity provider matches the token's kid",
        SecurityTokenInvalidSignatureException => "bad signature",
        SecurityTokenMalformedException or ArgumentException => "malformed token (not a compact JWS of base64url JSON)",
        _ => "invalid token",
    };
}
