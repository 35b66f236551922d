using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Limits.Internal;

namespace OpencodeGateway.Limits;

public static class LimitsServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Limits</c> (validated at start) over the registered <see cref="IUserCounters"/>, the client
    /// address from the trusted proxies' <c>X-Forwarded-For</c>, and Kestrel's cap on upgraded connections
    /// (<see cref="LimitsOptions.ConnectionsPerNode"/>).
    /// </summary>
    public static IServiceCollection AddGatewayLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LimitsOptions>().Bind(configuration.GetSection(LimitsOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LimitsOptions>, LimitsOptionsValidator>());
        services.TryAddSingleton<UserLimits>();
        services.TryAddSingleton<HubConnectionLimit>();
        services.TryAddSingleton<AuthFailureThrottle>();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<LimitsOptions>>((kestrel, limits) =>
            kestrel.Limits.MaxConcurrentUpgradedConnections = limits.Value.ConnectionsPerNode);
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<LimitsOptions>>((forwarded, limits) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var network in limits.Value.TrustedNetworks())
            {
                forwarded.KnownIPNetworks.Add(network);
            }
        });
        return services;
    }

    /// <summary>A single node's counts, in this process.</summary>
    public static IServiceCollection AddLocalUserCounters(this IServiceCollection services)
    {
        services.TryAddSingleton<IUserCounters, LocalUserCounters>();
        return services;
    }

    /// <summary>The cluster's counts, in Redis (with the renewal of this node's liveness).</summary>
    public static IServiceCollection AddRedisUserCounters(this IServiceCollection services)
    {
        services.TryAddSingleton<RedisUserCounters>();
        services.TryAddSingleton<IUserCounters>(sp => sp.GetRequiredService<RedisUserCounters>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisUserCounters>());
        return services;
    }

    /// <summary>The client's address from <c>X-Forwarded-For</c> when the request came through a trusted proxy; first.</summary>
    public static IApplicationBuilder UseForwardedClientAddress(this IApplicationBuilder app) => app.UseForwardedHeaders();

    /// <summary>
    /// Refuses (429) the requests with credentials of client addresses past <c>AuthFailuresPerMinute</c>; right after
    /// <c>UseAuthentication</c>, which gives it the credentials' verdict.
    /// </summary>
    public static IApplicationBuilder UseAuthFailureThrottle(this IApplicationBuilder app)
    {
        var throttle = app.ApplicationServices.GetRequiredService<AuthFailureThrottle>();
        return app.Use(next => context => throttle.InvokeAsync(context, next));
    }

    /// <summary>Refuses (429, before any upgrade) hub connections past <c>ConnectionsPerUser</c>; after <c>UseAuthentication</c>.</summary>
    public static IApplicationBuilder UseHubConnectionLimit(this IApplicationBuilder app, PathString hubs)
    {
        var limit = app.ApplicationServices.GetRequiredService<HubConnectionLimit>();
        return app.Use(next => context => context.Request.Path.StartsWithSegments(hubs) ? limit.InvokeAsync(context, next) : next(context));
    }
}
