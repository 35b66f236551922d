using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace OpencodeGateway.Auth.Internal;

/// <summary>
/// Locks each JwtBearer scheme to its own kind of token: <see cref="GatewayAuthenticationSchemes.SharedSecret"/> to
/// HS256 with <c>Gateway:Auth:Jwt</c>; <see cref="GatewayAuthenticationSchemes.IdentityProvider"/> (bound by ASP.NET
/// Core from <c>Authentication:Schemes:Bearer</c>) to asymmetric signatures, a required issuer and audience.
/// </summary>
internal sealed class JwtBearerSchemesSetup(IOptions<GatewayAuthOptions> authOptions) : IPostConfigureOptions<JwtBearerOptions>
{
    /// <summary>What an identity provider's JWKS may sign with: never HMAC, so a public key can never act as a secret.</summary>
    public static readonly string[] AsymmetricAlgorithms =
    [
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
    ];

    public void PostConfigure(string? name, JwtBearerOptions options)
    {
        var jwt = authOptions.Value.Jwt;
        if (name == GatewayAuthenticationSchemes.SharedSecret)
        {
            var key = jwt.KeyBytes();
            options.TokenValidationParameters = new TokenValidationParameters
            {
                IssuerSigningKey = key is null ? null : new SymmetricSecurityKey(key),
                ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
                ValidateIssuer = !string.IsNullOrEmpty(jwt.Issuer),
                ValidIssuer = jwt.Issuer,
                ValidateAudience = !string.IsNullOrEmpty(jwt.Audience),
                ValidAudience = jwt.Audience,
            };
        }
        else if (name == GatewayAuthenticationSchemes.IdentityProvider)
        {
            var parameters = options.TokenValidationParameters;
            // The issuer defaults to the discovery document's; the audience is required at start (no audience would
            // accept tokens the provider issued for any other application).
            parameters.ValidateIssuer = true;
            parameters.ValidateAudience = true;
            parameters.ValidAlgorithms = AsymmetricAlgorithms;
            if (options.ConfigurationManager is BaseConfigurationManager configurationManager)
            {
                // A key removed from the JWKS is revoked: never fall back to an earlier key set that still had it.
                configurationManager.UseLastKnownGoodConfiguration = false;
            }
        }
        else
        {
            return;
        }

        var common = options.TokenValidationParameters;
        common.ValidateLifetime = true;
        common.RequireExpirationTime = true;
        common.RequireSignedTokens = true;
        common.ClockSkew = jwt.ClockSkew;
        common.TypeValidator = ValidateType;
        options.MapInboundClaims = false;
        options.EventsType = typeof(GatewayJwtBearerEvents);
    }

    /// <summary><c>typ</c> is optional; when present it says JWT (or <c>at+jwt</c>, RFC 9068 access tokens).</summary>
    private static string ValidateType(string? type, SecurityToken token, TokenValidationParameters parameters) =>
        string.IsNullOrEmpty(type) || type.Equals("JWT", StringComparison.OrdinalIgnoreCase) || type.Equals("at+jwt", StringComparison.OrdinalIgnoreCase)
            ? type ?? ""
            : throw new SecurityTokenInvalidTypeException("typ must be JWT when present") { InvalidType = type };
}
