using Microsoft.Extensions.Options;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Limits.Internal;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Limits;

/// <summary>
/// The per-user limits of <see cref="LimitsOptions"/>, counted by <see cref="IUserCounters"/>. Admins are exempt. A
/// refusal is a <see cref="GatewayException"/> <c>rate_limited</c> (HTTP 429, <c>Retry-After</c>), counted in
/// <c>gateway.limits.refused</c> by limit and logged.
/// </summary>
public sealed class UserLimits(IUserCounters counters, IOptions<LimitsOptions> options, GatewayMetrics metrics, ILogger<UserLimits> logger)
{
    internal const string ConnectionsKind = "connections";
    internal const string PromptsKind = "prompts";
    internal const string AuthFailuresKind = "auth-failures";
    internal const string BusyKind = "busy";

    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    // Slots free up when a connection closes or a run ends, which nobody can foretell: clients are told to come back soon.
    private static readonly TimeSpan SlotRetry = TimeSpan.FromSeconds(5);

    public LimitsOptions Options { get; } = options.Value;

    public IUserCounters Counters => counters;

    /// <summary>
    /// Takes one of the user's hub connection slots, held until disposed; null for admins (nothing counted). Throws
    /// <c>rate_limited</c> when the user holds <see cref="LimitsOptions.ConnectionsPerUser"/> already.
    /// </summary>
    public async ValueTask<IAsyncDisposable?> TakeConnectionAsync(GatewayUser user, CancellationToken ct)
    {
        if (user.IsAdmin)
        {
            return null;
        }

        return await counters.TryTakeSlotAsync(ConnectionsKind, user.UserId, Options.ConnectionsPerUser, ct)
            ?? throw Refused(nameof(LimitsOptions.ConnectionsPerUser), Options.ConnectionsPerUser, user.UserId,
                $"User '{user.UserId}' holds {Options.ConnectionsPerUser} hub connections already; close one", SlotRetry);
    }

    /// <summary>Refuses (<c>rate_limited</c>) a negotiation the connection after it would be refused for.</summary>
    public async ValueTask CheckConnectionAsync(GatewayUser user, CancellationToken ct)
    {
        if (!user.IsAdmin && await counters.SlotsAsync(ConnectionsKind, user.UserId, ct) >= Options.ConnectionsPerUser)
        {
            throw Refused(nameof(LimitsOptions.ConnectionsPerUser), Options.ConnectionsPerUser, user.UserId,
                $"User '{user.UserId}' holds {Options.ConnectionsPerUser} hub connections already; close one", SlotRetry);
        }
    }

    /// <summary>Refuses a hub connection past <see cref="LimitsOptions.ConnectionsPerNode"/>: <c>service_unavailable</c> (503), another node may have room.</summary>
    public GatewayException NodeFull()
    {
        const string limit = nameof(LimitsOptions.ConnectionsPerNode);
        metrics.LimitRefused(limit);
        return new GatewayException(GatewayErrorCodes.ServiceUnavailable,
            $"This node holds {Options.ConnectionsPerNode} hub connections ({LimitsOptions.SectionName}:{limit}); retry, another node may have room.")
        {
            RetryAfter = TimeSpan.FromSeconds(1),
        };
    }

    /// <summary>Counts one prompt of the user; refuses it past <see cref="LimitsOptions.PromptsPerMinute"/>.</summary>
    public async ValueTask CountPromptAsync(GatewayUser user, CancellationToken ct)
    {
        if (!user.IsAdmin && await counters.TryCountAsync(PromptsKind, user.UserId, Options.PromptsPerMinute, Minute, ct) is { } wait)
        {
            throw Refused(nameof(LimitsOptions.PromptsPerMinute), Options.PromptsPerMinute, user.UserId,
                $"User '{user.UserId}' sent {Options.PromptsPerMinute} prompts in the last minute", wait);
        }
    }

    /// <summary>Refuses a prompt that would make the user run more than <see cref="LimitsOptions.BusySessionsPerUser"/> sessions.</summary>
    public GatewayException BusySessionsRefused(GatewayUser user) =>
        Refused(nameof(LimitsOptions.BusySessionsPerUser), Options.BusySessionsPerUser, user.UserId,
            $"User '{user.UserId}' runs {Options.BusySessionsPerUser} sessions already; wait for one to finish, or prompt one of them", SlotRetry);

    /// <summary>Refuses a join past <see cref="LimitsOptions.SessionsPerConnection"/> sessions watched by one connection.</summary>
    public void CheckSessionsPerConnection(GatewayUser user, int watched)
    {
        if (!user.IsAdmin && watched >= Options.SessionsPerConnection)
        {
            throw Refused(nameof(LimitsOptions.SessionsPerConnection), Options.SessionsPerConnection, user.UserId,
                $"This connection watches {Options.SessionsPerConnection} sessions already; leave one first", SlotRetry);
        }
    }

    /// <summary>
    /// Counts a failed authentication of <paramref name="address"/>; past <see cref="LimitsOptions.AuthFailuresPerMinute"/>
    /// counts nothing and returns how long until one more is allowed.
    /// </summary>
    public ValueTask<TimeSpan?> CountAuthFailureAsync(string address, CancellationToken ct) =>
        counters.TryCountAsync(AuthFailuresKind, address, Options.AuthFailuresPerMinute, Minute, ct);

    /// <summary>The refusal of a request with credentials from an address past <see cref="LimitsOptions.AuthFailuresPerMinute"/>.</summary>
    public GatewayException AuthFailuresRefused(string address, TimeSpan retryAfter) =>
        Refused(nameof(LimitsOptions.AuthFailuresPerMinute), Options.AuthFailuresPerMinute, address,
            $"Too many failed authentications from {address}", retryAfter);

    private GatewayException Refused(string limit, int max, string name, string detail, TimeSpan retryAfter)
    {
        metrics.LimitRefused(limit);
        LimitsLog.Refused(logger, limit, max, name, detail);
        return GatewayException.RateLimited($"{detail} ({LimitsOptions.SectionName}:{limit} is {max})", retryAfter);
    }
}
