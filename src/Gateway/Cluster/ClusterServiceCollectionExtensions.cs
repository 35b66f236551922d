using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Cluster;

public static class ClusterServiceCollectionExtensions
{
    /// <summary>
    /// Binds <c>Gateway:Cluster</c> and <c>ConnectionStrings:Redis</c> (validated at start). Returns whether cluster mode
    /// is on (a Redis connection string is set); when it is, adds this node's Redis connection and its health check.
    /// </summary>
    public static bool AddGatewayCluster(this IServiceCollection services, IConfiguration configuration)
    {
        var connectionString = configuration.GetConnectionString("Redis");
        services.AddOptions<ClusterOptions>()
            .Bind(configuration.GetSection(ClusterOptions.SectionName))
            .Configure(o => o.RedisConnectionString = connectionString)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClusterOptions>, ClusterOptionsValidator>());
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return false;
        }

        services.TryAddSingleton<RedisConnection>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisConnection>());
        services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis", tags: [HealthTags.Ready]);
        return true;
    }
}
