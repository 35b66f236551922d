using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Leases;

public static class LeasesServiceCollectionExtensions
{
    /// <summary>A single node's leases: it holds every upstream's event stream.</summary>
    public static IServiceCollection AddLocalUpstreamLeases(this IServiceCollection services)
    {
        services.TryAddSingleton<IUpstreamLeases, LocalUpstreamLeases>();
        return services;
    }

    /// <summary>
    /// Leases in the cluster's Redis: one node at a time reads each upstream's event stream, and the leases are spread
    /// over the nodes (the leases' hosted part writes this node's share of them every lease renew interval).
    /// </summary>
    public static IServiceCollection AddRedisUpstreamLeases(this IServiceCollection services)
    {
        services.TryAddSingleton<RedisUpstreamLeases>();
        services.TryAddSingleton<IUpstreamLeases>(sp => sp.GetRequiredService<RedisUpstreamLeases>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisUpstreamLeases>());
        return services;
    }
}
