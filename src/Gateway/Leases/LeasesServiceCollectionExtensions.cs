using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Leases;

public static class LeasesServiceCollectionExtensions
{
    /// <summary>Leases in the cluster's Redis: one node at a time reads each upstream's event stream.</summary>
    public static IServiceCollection AddRedisUpstreamLeases(this IServiceCollection services)
    {
        services.TryAddSingleton<IUpstreamLeases, RedisUpstreamLeases>();
        return services;
    }
}
