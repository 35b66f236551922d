using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Auth;

/// <summary><c>Gateway:Auth</c>: who may call the gateway.</summary>
public sealed class GatewayAuthOptions
{
    public const string SectionName = "Gateway:Auth";

    /// <summary><c>Gateway:Auth:Jwt</c>: HS256 tokens minted by the application that owns the users.</summary>
    public JwtOptions Jwt { get; set; } = new();

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

    /// <summary>Tolerance applied to <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Longer tokens are refused before any parsing.</summary>
    public int MaxTokenLength { get; set; } = 8 * 1024;

    internal const string Base64Prefix = "base64:";
    internal const int MinKeyBytes = 32;

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

/// <summary>Checks <see cref="GatewayAuthOptions"/> at start-up; every failure names its key.</summary>
internal sealed class GatewayAuthOptionsValidator(IHostEnvironment environment) : IValidateOptions<GatewayAuthOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayAuthOptions options)
    {
        var failures = new List<string>();
        const string prefix = GatewayAuthOptions.SectionName;

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
        else if (options.ApiKeys.Count == 0 && !options.DevMode)
        {
            failures.Add($"{prefix}:Jwt:SigningKey: required (at least {JwtOptions.MinKeyBytes} bytes, plain or 'base64:…') unless {prefix}:ApiKeys or {prefix}:DevMode is configured");
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
}
