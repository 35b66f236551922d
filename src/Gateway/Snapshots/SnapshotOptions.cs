using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Snapshots;

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

    /// <summary>
    /// Messages a snapshot carries: the newest ones. When the session has older ones the snapshot says where they begin
    /// (<c>earlier</c>), and clients page them with <c>LoadEarlier</c>, so a join's bytes do not grow with the session's age.
    /// </summary>
    public int MaxMessages { get; set; } = 20;

    /// <summary>Largest page <c>LoadEarlier</c> returns.</summary>
    public const int MaxPageSize = 100;
}

internal sealed class SnapshotOptionsValidator : IValidateOptions<SnapshotOptions>
{
    public ValidateOptionsResult Validate(string? name, SnapshotOptions options)
    {
        var failures = new List<string>();
        OptionsRules.AtLeast(failures, $"{SnapshotOptions.SectionName}:CacheMaxBytes", options.CacheMaxBytes, 0);
        if (options.MaxMessages is < 1 or > 500)
        {
            failures.Add($"{SnapshotOptions.SectionName}:MaxMessages: must be between 1 and 500");
        }
        return OptionsRules.Result(failures);
    }
}
