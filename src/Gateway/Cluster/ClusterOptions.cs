using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;
using StackExchange.Redis;

namespace OpencodeGateway.Cluster;

/// <summary>
/// <c>Gateway:Cluster</c>, with <c>ConnectionStrings:Redis</c>: several gateway nodes share one Redis. Without a Redis
/// connection string the gateway runs as a single node and ignores this section.
/// </summary>
public sealed class ClusterOptions
{
    public const string SectionName = "Gateway:Cluster";
    public const string ConnectionStringKey = "ConnectionStrings:Redis";

    /// <summary>This node's name in leases and logs; unique in the cluster. Default: machine name and process id.</summary>
    public string NodeId { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>Prefix of every Redis key and channel of this cluster, so several clusters can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "ocgw";

    /// <summary>How long a node's hold on an upstream's event stream lasts without renewal (takeover after a crash).</summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary>How often the holder renews its lease.</summary>
    public TimeSpan LeaseRenewInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the other nodes try to take a lease nobody holds (a released lease is taken at once).</summary>
    public TimeSpan LeaseRetryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Timeout of one Redis call made on a client's behalf (a join, a read): past it the call fails, never hangs.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// Events the stream holder keeps for Redis while Redis does not answer; past this the oldest are dropped and the
    /// sessions they belong to are written whole when Redis is back (their watchers get a snapshot).
    /// </summary>
    public int MaxPendingEvents { get; set; } = 100_000;

    /// <summary>How often each node checks that its watched sessions have not missed an event Redis holds.</summary>
    public TimeSpan HistoryCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary><c>ConnectionStrings:Redis</c>, copied at binding; null or empty: single node.</summary>
    internal string? RedisConnectionString { get; set; }

    /// <summary>Whether this gateway runs as a cluster node.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(RedisConnectionString);
}

internal sealed class ClusterOptionsValidator : IValidateOptions<ClusterOptions>
{
    public ValidateOptionsResult Validate(string? name, ClusterOptions options)
    {
        var failures = new List<string>();
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }

        const string prefix = ClusterOptions.SectionName;
        try
        {
            ConfigurationOptions.Parse(options.RedisConnectionString!);
        }
        catch (ArgumentException e)
        {
            failures.Add($"{ClusterOptions.ConnectionStringKey}: not a StackExchange.Redis configuration string ({e.Message})");
        }

        if (string.IsNullOrWhiteSpace(options.NodeId) || options.NodeId.Contains('|') || options.NodeId.Length > 200)
        {
            failures.Add($"{prefix}:NodeId: '{options.NodeId}' must be 1-200 characters without '|'");
        }

        if (string.IsNullOrWhiteSpace(options.KeyPrefix) || options.KeyPrefix.Any(c => char.IsWhiteSpace(c) || c is '{' or '}')
            || options.KeyPrefix.Length > 64)
        {
            failures.Add($"{prefix}:KeyPrefix: '{options.KeyPrefix}' must be 1-64 characters without spaces or braces");
        }

        OptionsRules.Positive(failures, $"{prefix}:LeaseTtl", options.LeaseTtl);
        OptionsRules.Positive(failures, $"{prefix}:LeaseRenewInterval", options.LeaseRenewInterval);
        OptionsRules.Positive(failures, $"{prefix}:LeaseRetryInterval", options.LeaseRetryInterval);
        OptionsRules.Positive(failures, $"{prefix}:OperationTimeout", options.OperationTimeout);
        OptionsRules.Positive(failures, $"{prefix}:HistoryCheckInterval", options.HistoryCheckInterval);
        if (options.LeaseRenewInterval * 2 > options.LeaseTtl)
        {
            failures.Add($"{prefix}:LeaseRenewInterval: must be at most half of LeaseTtl ({options.LeaseTtl}), so one lost renewal does not lose the lease");
        }

        OptionsRules.AtLeast(failures, $"{prefix}:MaxPendingEvents", options.MaxPendingEvents, 1000);
        return OptionsRules.Result(failures);
    }
}
