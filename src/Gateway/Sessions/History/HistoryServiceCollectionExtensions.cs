using Microsoft.Extensions.DependencyInjection.Extensions;
using OpencodeGateway.Sessions.Live;

namespace OpencodeGateway.Sessions.History;

public static class HistoryServiceCollectionExtensions
{
    /// <summary>Adds the single-node session history (in this process); cluster mode replaces it with Redis.</summary>
    public static IServiceCollection AddLocalSessionHistory(this IServiceCollection services)
    {
        services.TryAddSingleton<ISessionHistory, LocalSessionHistory>();
        return services;
    }

    /// <summary>
    /// Adds the cluster's history in Redis (with its writer, stopped after the pumps so what they read is written) and
    /// live state that mirrors its changes there.
    /// </summary>
    public static IServiceCollection AddRedisSessionHistory(this IServiceCollection services)
    {
        services.TryAddSingleton(sp => LiveSessionsServiceCollectionExtensions.CreateRegistry(sp, mirror: true));
        services.TryAddSingleton<RedisSessionHistory>();
        services.TryAddSingleton<ISessionHistory>(sp => sp.GetRequiredService<RedisSessionHistory>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisSessionHistory>());
        return services;
    }
}
