using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Upstreams;

/// <summary>
/// <c>Gateway:UpstreamRegistry</c>: the opencode servers admins register and remove at run time
/// (<c>POST</c>/<c>DELETE /api/upstreams</c>), kept in the session store beside the configured ones.
/// </summary>
public sealed class UpstreamRegistryOptions
{
    public const string SectionName = "Gateway:UpstreamRegistry";

    /// <summary>Bytes of <see cref="SecretKey"/> once decoded (AES-256).</summary>
    public const int SecretKeyBytes = 32;

    /// <summary>
    /// How often each node reads the registered upstreams from the store: the longest a change made on another node
    /// takes to reach this one (the node that made it applies it at once).
    /// </summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Base64 of 32 random bytes (<c>openssl rand -base64 32</c>), the same on every node: the key the passwords of
    /// registered upstreams are encrypted with in the store (AES-256-GCM). Without it an upstream with a password is
    /// refused; upstreams without one need none. Empty: not set.
    /// </summary>
    public string? SecretKey { get; set; }
}

internal sealed class UpstreamRegistryOptionsValidator : IValidateOptions<UpstreamRegistryOptions>
{
    private static readonly TimeSpan MinRefresh = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxRefresh = TimeSpan.FromSeconds(5);

    public ValidateOptionsResult Validate(string? name, UpstreamRegistryOptions options)
    {
        var failures = new List<string>();
        const string prefix = UpstreamRegistryOptions.SectionName;
        if (options.RefreshInterval < MinRefresh || options.RefreshInterval > MaxRefresh)
        {
            failures.Add($"{prefix}:RefreshInterval: must be from {MinRefresh:c} to {MaxRefresh:c} (every node picks a change up within it)");
        }

        if (!string.IsNullOrWhiteSpace(options.SecretKey) && DecodeKey(options.SecretKey) is null)
        {
            failures.Add($"{prefix}:SecretKey: must be the base64 of {UpstreamRegistryOptions.SecretKeyBytes} bytes (openssl rand -base64 32)");
        }

        return OptionsRules.Result(failures);
    }

    /// <summary>The key's bytes, or null when it is not base64 of the right length.</summary>
    internal static byte[]? DecodeKey(string key)
    {
        var bytes = new byte[UpstreamRegistryOptions.SecretKeyBytes + 3];
        return Convert.TryFromBase64String(key.Trim(), bytes, out var written) && written == UpstreamRegistryOptions.SecretKeyBytes
            ? bytes[..written]
            : null;
    }
}
