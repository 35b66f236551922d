using Microsoft.Extensions.DependencyInjection.Extensions;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.History.Internal;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.History;

public static class HistoryServiceCollectionExtensions
{
    /// <summary>Adds the single-node session history (in this process); cluster mode replaces it with Redis.</summary>
    public static IServiceCollection AddLocalSessionHistory(this IServiceCollection services)
    {
        services.TryAddSingleton<ISessionHistory, LocalSessionHistory>();
        services.TryAddSingleton<ISequencedEventSink>(sp => sp.GetRequiredService<ISessionHistory>());
        return services;
    }

    /// <summary>
    /// Adds the cluster's history in Redis (with its writer, stopped after the pumps so what they read is written) and
    /// live state that mirrors its changes there; <c>gateway.history.pending</c> observes its queue.
    /// </summary>
    public static IServiceCollection AddRedisSessionHistory(this IServiceCollection services)
    {
        services.TryAddSingleton(sp => SequencingServiceCollectionExtensions.CreateRegistry(sp, newObserver: () => new LiveStateMirror()));
        services.TryAddSingleton(sp =>
        {
            var history = ActivatorUtilities.CreateInstance<RedisSessionHistory>(sp);
            sp.GetRequiredService<GatewayMetrics>().ObserveHistoryPending(() => history.Pending);
            return history;
        });
        services.TryAddSingleton<ISessionHistory>(sp => sp.GetRequiredService<RedisSessionHistory>());
        services.TryAddSingleton<ISequencedEventSink>(sp => sp.GetRequiredService<RedisSessionHistory>());
        services.AddHostedService(sp => sp.GetRequiredService<RedisSessionHistory>());
        return services;
    }
}
