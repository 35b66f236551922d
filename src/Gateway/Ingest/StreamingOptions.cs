using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Ingest;

/// <summary><c>Gateway:Streaming</c>: the one event subscription per upstream.</summary>
public sealed class StreamingOptions
{
    public const string SectionName = "Gateway:Streaming";

    /// <summary>No bytes for this long means the stream stalled (opencode sends a heartbeat every 10 s).</summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait for the response headers of the event stream.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First reconnect delay; doubles per failed attempt, with equal jitter.</summary>
    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Cap of the reconnect delay.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Consecutive text deltas of the same part arriving within this window are sent as one <c>part.delta</c> (first
    /// offset, concatenated text). Zero (default) sends every upstream delta as it comes.
    /// </summary>
    public TimeSpan CoalesceWindow { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// How many workers sequence, store and deliver one upstream's events, each session always on the same one (its
    /// events in the stream's order, sessions in parallel). Default: the number of processors.
    /// </summary>
    public int SequencingWorkers { get; set; } = Environment.ProcessorCount;
}

internal sealed class StreamingOptionsValidator : IValidateOptions<StreamingOptions>
{
    public ValidateOptionsResult Validate(string? name, StreamingOptions options)
    {
        var failures = new List<string>();
        const string prefix = StreamingOptions.SectionName;
        OptionsRules.Positive(failures, $"{prefix}:StallTimeout", options.StallTimeout);
        OptionsRules.Positive(failures, $"{prefix}:ConnectTimeout", options.ConnectTimeout);
        OptionsRules.Positive(failures, $"{prefix}:ReconnectInitialDelay", options.ReconnectInitialDelay);
        if (options.ReconnectMaxDelay < options.ReconnectInitialDelay)
        {
            failures.Add($"{prefix}:ReconnectMaxDelay: must be at least ReconnectInitialDelay");
        }

        if (options.CoalesceWindow < TimeSpan.Zero || options.CoalesceWindow > TimeSpan.FromSeconds(1))
        {
            failures.Add($"{prefix}:CoalesceWindow: must be between 00:00:00 (off) and 00:00:01");
        }

        if (options.SequencingWorkers is < 1 or > 64)
        {
            failures.Add($"{prefix}:SequencingWorkers: must be between 1 and 64");
        }

        return OptionsRules.Result(failures);
    }
}
