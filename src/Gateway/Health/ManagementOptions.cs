using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Health;

/// <summary>
/// <c>Gateway:Management</c>: where the gateway's internals are served: <c>/metrics</c>, <c>/openapi/v1.json</c> and the
/// detailed bodies of <c>/healthz</c> and <c>/readyz</c>. Never through the public port of a Production node.
/// </summary>
public sealed class ManagementOptions
{
    public const string SectionName = "Gateway:Management";

    /// <summary>
    /// URLs (<c>;</c>-separated, each with an explicit port, e.g. <c>http://0.0.0.0:9090</c>) the node also listens on,
    /// for its internals only: served there to anyone who reaches the port (keep it off the public ingress), and not on
    /// the public URLs. Unset: the internals are served on the public URLs, to anyone outside Production and to admins
    /// (admin tokens or API keys) in Production.
    /// </summary>
    public string? Urls { get; set; }

    /// <summary>The ports of <see cref="Urls"/>.</summary>
    internal IReadOnlySet<int> Ports => Parse(Urls).Select(u => u.Port).ToHashSet();

    /// <summary>The URLs that parse (the validator names the others).</summary>
    internal static IReadOnlyList<Uri> Parse(string? urls) =>
        [.. Split(urls).Select(u => Uri.TryCreate(Normal(u), UriKind.Absolute, out var uri) ? uri : null).OfType<Uri>()];

    internal static IEnumerable<string> Split(string? urls) =>
        (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Kestrel's wildcard hosts (<c>*</c>, <c>+</c>) as a host <see cref="Uri"/> parses.</summary>
    internal static string Normal(string url) =>
        url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal);

    /// <summary>
    /// Every URL the node listens on when management URLs are set: the public ones as configured (<c>urls</c>, or
    /// <c>http_ports</c> as container images set it, or Kestrel's default) and the management ones.
    /// </summary>
    internal static string[] ListenUrls(IConfiguration configuration, string managementUrls)
    {
        var main = configuration["urls"] is { Length: > 0 } urls ? Split(urls)
            : configuration["http_ports"] is { Length: > 0 } ports ? Split(ports.Replace(',', ';')).Select(p => $"http://*:{p}")
            : ["http://localhost:5000"];
        return [.. main, .. Split(managementUrls)];
    }
}

internal sealed class ManagementOptionsValidator : IValidateOptions<ManagementOptions>
{
    public ValidateOptionsResult Validate(string? name, ManagementOptions options)
    {
        var failures = new List<string>();
        const string key = $"{ManagementOptions.SectionName}:Urls";
        foreach (var url in ManagementOptions.Split(options.Urls))
        {
            if (!Uri.TryCreate(ManagementOptions.Normal(url), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.AbsolutePath != "/"
                || !url.Contains($":{uri.Port}", StringComparison.Ordinal))
            {
                failures.Add($"{key}: '{url}' is not an http(s) URL with an explicit port and no path (e.g. http://0.0.0.0:9090)");
            }
        }

        return OptionsRules.Result(failures);
    }
}
