using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Sessions.Snapshots;

/// <summary><c>Gateway:Snapshots</c>: how snapshots reuse what opencode's REST API answered.</summary>
public sealed class SnapshotOptions
{
    public const string SectionName = "Gateway:Snapshots";

    /// <summary>
    /// A session's REST state (messages, todos, status, permissions) is fetched once per epoch and kept while the
    /// session is live, when it is at most this many bytes (estimated); 0 fetches it for every snapshot. Concurrent
    /// snapshots of one session always share one fetch.
    /// </summary>
    public long CacheMaxBytes { get; set; } = 8 * 1024 * 1024;
}

internal sealed class SnapshotOptionsValidator : IValidateOptions<SnapshotOptions>
{
    public ValidateOptionsResult Validate(string? name, SnapshotOptions options)
    {
        var failures = new List<string>();
        OptionsRules.AtLeast(failures, $"{SnapshotOptions.SectionName}:CacheMaxBytes", options.CacheMaxBytes, 0);
        return OptionsRules.Result(failures);
    }
}
