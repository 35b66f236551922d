using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Sequencing;

/// <summary><c>Gateway:Replay</c>: what the gateway keeps per session to recover clients.</summary>
public sealed class ReplayOptions
{
    public const string SectionName = "Gateway:Replay";

    /// <summary>Most events kept per session for clients that rejoin with <c>since</c>.</summary>
    public int MaxEvents { get; set; } = 4096;

    /// <summary>Most bytes (estimated) kept per session in the replay log.</summary>
    public long MaxBytes { get; set; } = 1024 * 1024;

    /// <summary>A session nobody watches and that had no event for this long is forgotten.</summary>
    public TimeSpan IdleSessionTtl { get; set; } = TimeSpan.FromMinutes(10);
}

internal sealed class ReplayOptionsValidator : IValidateOptions<ReplayOptions>
{
    public ValidateOptionsResult Validate(string? name, ReplayOptions options)
    {
        var failures = new List<string>();
        const string prefix = ReplayOptions.SectionName;
        OptionsRules.AtLeast(failures, $"{prefix}:MaxEvents", options.MaxEvents, 1);
        OptionsRules.AtLeast(failures, $"{prefix}:MaxBytes", options.MaxBytes, 1024);
        OptionsRules.Positive(failures, $"{prefix}:IdleSessionTtl", options.IdleSessionTtl);
        return OptionsRules.Result(failures);
    }
}
