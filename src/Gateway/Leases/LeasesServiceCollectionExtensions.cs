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

    /// <summary>Leases in the cluster's Redis: one node at a time reads each upstream's event stream.</summary>
    public static IServiceCollection AddRedisUpstreamLeases(this IServiceCollection services)
    {
        services.TryAddSingleton<IUpstreamLeases, RedisUpstreamLeases>();
        return services;
    }
}
