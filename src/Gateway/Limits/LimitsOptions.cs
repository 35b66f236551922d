using System.Net;
using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Limits;

/// <summary>
/// <c>Gateway:Limits</c>: what one user (and one client address) may take of the gateway. Counted across the cluster
/// (in Redis) in cluster mode, in memory on a single node. Admins and admin API keys are exempt. Over a limit: HTTP 429
/// with <c>Retry-After</c> and problem+json <c>rate_limited</c>; a hub call fails with <c>rate_limited: …</c>.
/// </summary>
public sealed class LimitsOptions
{
    public const string SectionName = "Gateway:Limits";

    /// <summary>Hub connections one user holds at once, on every node (tabs, devices).</summary>
    public int ConnectionsPerUser { get; set; } = 100;

    /// <summary>Prompts one user sends per minute (sliding), through the hub, <c>/api/chat</c> and <c>/api/ai-sdk/chat</c>.</summary>
    public int PromptsPerMinute { get; set; } = 30;

    /// <summary>
    /// Sessions of one user running at once (busy, or prompted and not answered yet): a prompt to another session is
    /// refused while this many run; one to a session that runs already is queued by opencode and allowed.
    /// </summary>
    public int BusySessionsPerUser { get; set; } = 10;

    /// <summary>
    /// Failed authentications (wrong API key, bad token) one client address may make per minute; past it every request
    /// of that address with credentials is refused until the window allows one more.
    /// </summary>
    public int AuthFailuresPerMinute { get; set; } = 20;

    /// <summary>Sessions one hub connection watches at once (<c>Join</c>ed and not left).</summary>
    public int SessionsPerConnection { get; set; } = 100;

    /// <summary>Hub connections (WebSockets) this node holds at once, whoever their users: Kestrel's <c>MaxConcurrentUpgradedConnections</c>.</summary>
    public int ConnectionsPerNode { get; set; } = 10_000;

    /// <summary>
    /// Addresses and networks (CIDR) of the proxies in front of the gateway whose <c>X-Forwarded-For</c> names the
    /// client address (what <see cref="AuthFailuresPerMinute"/> counts by), besides loopback (nginx on the same host),
    /// always trusted. Behind an ingress add its pods' network, e.g. <c>10.0.0.0/8</c>.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];

    /// <summary>Loopback and the networks of <see cref="TrustedProxies"/> (the validator names those that do not parse).</summary>
    internal IEnumerable<IPNetwork> TrustedNetworks() =>
        [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128"), .. TrustedProxies.Select(ParseNetwork).OfType<IPNetwork>()];

    internal static IPNetwork? ParseNetwork(string value) =>
        IPNetwork.TryParse(value, out var network) ? network
        : IPAddress.TryParse(value, out var address) ? new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)
        : null;
}

internal sealed class LimitsOptionsValidator : IValidateOptions<LimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, LimitsOptions options)
    {
        const string prefix = LimitsOptions.SectionName;
        var failures = new List<string>();
        OptionsRules.AtLeast(failures, $"{prefix}:ConnectionsPerUser", options.ConnectionsPerUser, 1);
        OptionsRules.AtLeast(failures, $"{prefix}:PromptsPerMinute", options.PromptsPerMinute, 1);
        OptionsRules.AtLeast(failures, $"{prefix}:BusySessionsPerUser", options.BusySessionsPerUser, 1);
        OptionsRules.AtLeast(failures, $"{prefix}:AuthFailuresPerMinute", options.AuthFailuresPerMinute, 1);
        OptionsRules.AtLeast(failures, $"{prefix}:SessionsPerConnection", options.SessionsPerConnection, 1);
        OptionsRules.AtLeast(failures, $"{prefix}:ConnectionsPerNode", options.ConnectionsPerNode, 1);
        if (options.ConnectionsPerUser > options.ConnectionsPerNode)
        {
            failures.Add($"{prefix}:ConnectionsPerUser: {options.ConnectionsPerUser} is more than ConnectionsPerNode ({options.ConnectionsPerNode})");
        }

        for (var i = 0; i < options.TrustedProxies.Count; i++)
        {
            if (LimitsOptions.ParseNetwork(options.TrustedProxies[i]) is null)
            {
                failures.Add($"{prefix}:TrustedProxies:{i}: '{options.TrustedProxies[i]}' is not an IP address or a CIDR network (10.0.0.0/8)");
            }
        }

        return OptionsRules.Result(failures);
    }
}
