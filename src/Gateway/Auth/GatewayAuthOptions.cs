using System.Globalization;
using System.Text;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Auth;

/// <summary>
/// <c>Gateway:Auth</c>: who may call the gateway. Tokens of an identity provider are configured in ASP.NET Core's own
/// section, <c>Authentication:Schemes:Bearer</c> (see <see cref="IdentityProviderSection"/>).
/// </summary>
public sealed class GatewayAuthOptions
{
    public const string SectionName = "Gateway:Auth";

    /// <summary>The JwtBearer scheme of an identity provider (OIDC discovery + JWKS), bound by ASP.NET Core itself.</summary>
    public const string IdentityProviderSection = "Authentication:Schemes:Bearer";

    /// <summary><c>Gateway:Auth:Jwt</c>: HS256 tokens minted by the application that owns the users.</summary>
    public JwtOptions Jwt { get; set; } = new();

    /// <summary><c>Gateway:Auth:UserIdClaim</c>: the token claim holding the user id (any accepted token).</summary>
    public string UserIdClaim { get; set; } = "sub";

    /// <summary><c>Gateway:Auth:WorkspacesClaim</c>: the token claim holding the array of workspaces the user belongs to.</summary>
    public string WorkspacesClaim { get; set; } = "ws";

    /// <summary><c>Gateway:Auth:ApiKeys</c>: keys of server-to-server callers, stored as SHA-256 hashes.</summary>
    public List<ApiKeyOptions> ApiKeys { get; set; } = [];

    /// <summary>
    /// <c>Gateway:Auth:DevMode</c>: trust the <c>X-Debug-User</c> header. Refused when the environment is Production;
    /// logs a warning at every start.
    /// </summary>
    public bool DevMode { get; set; }
}

public sealed class JwtOptions
{
    /// <summary>When set, the token's <c>iss</c> must equal it.</summary>
    public string? Issuer { get; set; }

    /// <summary>When set, the token's <c>aud</c> (string or array) must contain it.</summary>
    public string? Audience { get; set; }

    /// <summary>The HMAC key: plain text (its UTF-8 bytes) or <c>base64:</c> followed by base64; at least 32 bytes.</summary>
    public string? SigningKey { get; set; }

    /// <summary>Tolerance applied to <c>exp</c> and <c>nbf</c> (of identity-provider tokens too).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longer tokens (shared-secret or identity-provider) are refused before any parsing.</summary>
    public int MaxTokenLength { get; set; } = 8 * 1024;

    /// <summary>
    /// The longest a token your application mints (HS256) may still be valid: one whose <c>exp</c> is further than this
    /// from now is refused, so a leaked token cannot be used for years. (Identity providers' tokens follow their own
    /// policy.)
    /// </summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromHours(24);

    internal const string Base64Prefix = "base64:";
    internal const int MinKeyBytes = 32;
    internal const int MaxWorkspaces = 256;

    /// <summary>The key bytes, or null when <see cref="SigningKey"/> is empty or not valid base64 after the prefix.</summary>
    internal byte[]? KeyBytes()
    {
        if (string.IsNullOrEmpty(SigningKey))
        {
            return null;
        }

        if (!SigningKey.StartsWith(Base64Prefix, StringComparison.Ordinal))
        {
            return Encoding.UTF8.GetBytes(SigningKey);
        }

        try
        {
            return Convert.FromBase64String(SigningKey[Base64Prefix.Length..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}

/// <summary>One API key (header <c>X-Api-Key</c>), bound to a user or marked admin.</summary>
public sealed class ApiKeyOptions
{
    /// <summary>Lower- or upper-case hex SHA-256 of the key: <c>printf %s "$KEY" | sha256sum</c>.</summary>
    public string KeyHash { get; set; } = "";

    /// <summary>The user the caller acts as; required unless <see cref="Admin"/>.</summary>
    public string? UserId { get; set; }

    /// <summary>Admins see every session, including ones without a record, and may adopt them.</summary>
    public bool Admin { get; set; }

    /// <summary>A name for logs (which caller this is).</summary>
    public string Name { get; set; } = "";

    /// <summary>Workspaces the caller is a member of, like a token's <c>ws</c> claim.</summary>
    public List<string> Workspaces { get; set; } = [];
}

/// <summary>
/// Checks <see cref="GatewayAuthOptions"/> and the identity provider's section at start-up; every failure names its key.
/// </summary>
internal sealed class GatewayAuthOptionsValidator(IHostEnvironment environment, IConfiguration configuration)
    : IValidateOptions<GatewayAuthOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayAuthOptions options)
    {
        var failures = new List<string>();
        const string prefix = GatewayAuthOptions.SectionName;
        var identityProvider = ValidateIdentityProvider(configuration.GetSection(GatewayAuthOptions.IdentityProviderSection), failures);

        if (options.DevMode && environment.IsProduction())
        {
            failures.Add($"{prefix}:DevMode: must not be true when the environment is Production (it trusts the X-Debug-User header)");
        }

        var jwt = options.Jwt;
        if (!string.IsNullOrEmpty(jwt.SigningKey))
        {
            var key = jwt.KeyBytes();
            if (key is null)
            {
                failures.Add($"{prefix}:Jwt:SigningKey: the text after 'base64:' is not valid base64");
            }
            else if (key.Length < JwtOptions.MinKeyBytes)
            {
                failures.Add($"{prefix}:Jwt:SigningKey: must be at least {JwtOptions.MinKeyBytes} bytes (it has {key.Length})");
            }
        }
        else if (options.ApiKeys.Count == 0 && !options.DevMode && !identityProvider)
        {
            failures.Add($"{prefix}:Jwt:SigningKey: required (at least {JwtOptions.MinKeyBytes} bytes, plain or 'base64:…') unless {GatewayAuthOptions.IdentityProviderSection}:Authority, {prefix}:ApiKeys or {prefix}:DevMode is configured");
        }

        if (!IsClaimName(options.UserIdClaim))
        {
            failures.Add($"{prefix}:UserIdClaim: must be a claim name (1-256 characters, no spaces)");
        }

        if (!IsClaimName(options.WorkspacesClaim))
        {
            failures.Add($"{prefix}:WorkspacesClaim: must be a claim name (1-256 characters, no spaces)");
        }

        if (jwt.MaxLifetime <= TimeSpan.Zero || jwt.MaxLifetime > TimeSpan.FromDays(366))
        {
            failures.Add($"{prefix}:Jwt:MaxLifetime: must be a positive duration of at most 366.00:00:00");
        }

        if (jwt.ClockSkew < TimeSpan.Zero || jwt.ClockSkew > TimeSpan.FromMinutes(5))
        {
            failures.Add($"{prefix}:Jwt:ClockSkew: must be between 00:00:00 and 00:05:00");
        }

        if (jwt.MaxTokenLength is < 256 or > 64 * 1024)
        {
            failures.Add($"{prefix}:Jwt:MaxTokenLength: must be between 256 and 65536");
        }

        var hashes = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < options.ApiKeys.Count; i++)
        {
            var key = options.ApiKeys[i];
            var at = $"{prefix}:ApiKeys:{i}";
            if (key.KeyHash.Length != 64 || !key.KeyHash.All(char.IsAsciiHexDigit))
            {
                failures.Add($"{at}:KeyHash: must be the 64 hex digits of the key's SHA-256");
            }
            else if (!hashes.Add(key.KeyHash))
            {
                failures.Add($"{at}:KeyHash: the same key is configured twice");
            }

            if (string.IsNullOrWhiteSpace(key.Name))
            {
                failures.Add($"{at}:Name: required (names the caller in logs)");
            }

            if (string.IsNullOrWhiteSpace(key.UserId) && !key.Admin)
            {
                failures.Add($"{at}:UserId: required unless Admin is true");
            }
            else if (key.UserId is not null && !Identifiers.IsValidUserId(key.UserId))
            {
                failures.Add($"{at}:UserId: {Identifiers.UserIdRule}");
            }

            for (var w = 0; w < key.Workspaces.Count; w++)
            {
                if (!Identifiers.IsValidWorkspace(key.Workspaces[w]))
                {
                    failures.Add($"{at}:Workspaces:{w}: {Identifiers.WorkspaceRule}");
                }
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool IsClaimName(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= 256 && !value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c));

    /// <summary>
    /// Checks what JwtBearer would otherwise reject only at the first request (or accept too loosely): returns whether
    /// an identity provider is configured.
    /// </summary>
    private bool ValidateIdentityProvider(IConfigurationSection section, List<string> failures)
    {
        const string at = GatewayAuthOptions.IdentityProviderSection;
        if (!section.GetChildren().Any())
        {
            return false;
        }

        var requireHttps = true;
        if (section["RequireHttpsMetadata"] is { } requireHttpsText && !bool.TryParse(requireHttpsText, out requireHttps))
        {
            failures.Add($"{at}:RequireHttpsMetadata: '{requireHttpsText}' is not true or false");
            requireHttps = true;
        }

        if (!requireHttps && environment.IsProduction())
        {
            failures.Add($"{at}:RequireHttpsMetadata: must not be false when the environment is Production (the signing keys would travel unprotected)");
        }

        var authority = section["Authority"];
        var metadataAddress = section["MetadataAddress"];
        if (string.IsNullOrWhiteSpace(authority) && string.IsNullOrWhiteSpace(metadataAddress))
        {
            failures.Add($"{at}:Authority: required when {at} is configured (the identity provider's issuer URL, e.g. https://tenant.eu.auth0.com/)");
        }

        foreach (var (key, value) in new[] { ("Authority", authority), ("MetadataAddress", metadataAddress) })
        {
            if (string.IsNullOrWhiteSpace(value))
            {
                continue;
            }

            if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
            {
                failures.Add($"{at}:{key}: '{value}' is not an absolute http(s) URL");
            }
            else if (requireHttps && uri.Scheme != Uri.UriSchemeHttps)
            {
                failures.Add($"{at}:{key}: must be https:// (set {at}:RequireHttpsMetadata to false only for a local test identity provider)");
            }
        }

        if (string.IsNullOrWhiteSpace(section["ValidAudience"])
            && !section.GetSection("ValidAudiences").GetChildren().Any(c => !string.IsNullOrWhiteSpace(c.Value)))
        {
            failures.Add($"{at}:ValidAudiences: at least one audience is required (the aud your identity provider puts in tokens for the gateway; without it any token of that provider would do)");
        }

        if (section["RefreshInterval"] is { } refreshText
            && (!TimeSpan.TryParse(refreshText, CultureInfo.InvariantCulture, out var refresh) || refresh < TimeSpan.FromSeconds(1)))
        {
            failures.Add($"{at}:RefreshInterval: '{refreshText}' must be a time span of at least 00:00:01");
        }

        return true;
    }
}
