using Microsoft.Extensions.Options;

namespace OpencodeGateway.Cors;

/// <summary>
/// <c>Gateway:Cors</c>: which other origins' pages may call the hub (<c>/hubs/*</c>) and the HTTP API (<c>/api/*</c>).
/// Empty <see cref="AllowedOrigins"/> (the default) means same-origin only: no CORS header is ever sent.
/// </summary>
public sealed class GatewayCorsOptions
{
    public const string SectionName = "Gateway:Cors";

    /// <summary>The wildcard origin: any page may call; refused while <see cref="AllowCredentials"/> is true.</summary>
    public const string AnyOrigin = "*";

    /// <summary>
    /// <c>Gateway:Cors:AllowedOrigins</c>: origins as browsers send them, <c>scheme://host[:port]</c> (no path, no
    /// trailing <c>/</c>), as a list (<c>…:AllowedOrigins:0</c>, <c>…:1</c>) or one comma-separated value.
    /// </summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// <c>Gateway:Cors:AllowCredentials</c>: answer <c>Access-Control-Allow-Credentials: true</c>. SignalR's JavaScript
    /// client sends credentials (<c>withCredentials</c>) by default, so its negotiate fails without it.
    /// </summary>
    public bool AllowCredentials { get; set; } = true;

    /// <summary><c>Gateway:Cors:PreflightMaxAge</c>: how long browsers may cache a preflight answer (<c>Access-Control-Max-Age</c>).</summary>
    public TimeSpan PreflightMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    internal static readonly TimeSpan MaxPreflightMaxAge = TimeSpan.FromDays(1);

    /// <summary>Set at binding when the key holds one comma-separated value instead of a list.</summary>
    internal string? AllowedOriginsValue { get; set; }

    /// <summary>The configured origins, from the list or the comma-separated value.</summary>
    internal IReadOnlyList<string> EffectiveOrigins =>
        AllowedOriginsValue is { } value
            ? [.. AllowedOrigins, .. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]
            : AllowedOrigins;

    internal bool AllowsAnyOrigin => EffectiveOrigins.Contains(AnyOrigin);
}

/// <summary>Checks <see cref="GatewayCorsOptions"/> at start-up; every failure names its key.</summary>
internal sealed class GatewayCorsOptionsValidator : IValidateOptions<GatewayCorsOptions>
{
    private const string Key = GatewayCorsOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, GatewayCorsOptions options)
    {
        var failures = new List<string>();
        var origins = options.EffectiveOrigins;
        for (var i = 0; i < origins.Count; i++)
        {
            var origin = origins[i];
            var at = options.AllowedOriginsValue is null ? $"{Key}:AllowedOrigins:{i}" : $"{Key}:AllowedOrigins";
            if (origin == GatewayCorsOptions.AnyOrigin)
            {
                if (options.AllowCredentials)
                {
                    failures.Add($"{at}: '*' cannot be combined with {Key}:AllowCredentials=true (browsers refuse it); list the origins, or set AllowCredentials to false");
                }
            }
            else if (OriginProblem(origin) is { } problem)
            {
                failures.Add($"{at}: '{origin}' {problem}");
            }
        }

        if (options.PreflightMaxAge < TimeSpan.Zero || options.PreflightMaxAge > GatewayCorsOptions.MaxPreflightMaxAge)
        {
            failures.Add($"{Key}:PreflightMaxAge: must be between 00:00:00 and 1.00:00:00");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Why the text is not an origin as a browser sends it (<c>scheme://host[:port]</c>), or null.</summary>
    internal static string? OriginProblem(string origin)
    {
        const string shape = "is not an origin: expected scheme://host[:port] with scheme http or https, no path, query or trailing '/'";
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            return shape;
        }

        var authority = origin[(uri.Scheme.Length + Uri.SchemeDelimiter.Length)..];
        if (authority.Length == 0 || authority.IndexOfAny(['/', '?', '#', '@', '*']) >= 0 || !string.IsNullOrEmpty(uri.UserInfo))
        {
            return shape;
        }

        return null;
    }
}
