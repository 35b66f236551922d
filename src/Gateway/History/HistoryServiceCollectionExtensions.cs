using Microsoft.Extensions.DependencyInjection.Extensions;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.History.Internal;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.History;

public static class HistoryServiceCollectionExtensions
{
    /// <summary>The observer that copies a session's live state to the cluster's history (for the sequencer's registry).</summary>
    internal static ILiveStateObserver NewRedisMirror() => new LiveStateMirror();

    /// <summary>Adds the single-node session history (in this process).</summary>
    public static IServiceCollection AddLocalSessionHistory(this IServiceCollection services)
    {
        services.TryAddSingleton<ISessionHistory, LocalSessionHistory>();
        services.TryAddSingleton<ISequencedEventSink>(sp => sp.GetRequiredService<ISessionHistory>());
        return services;
    }

    /// <summary>
    /// Adds the cluster's history in Redis (with its writer, stopped after the pumps so what they read is written; the
    /// live state's changes come from <see cref="NewRedisMirror"/>); <c>gateway.history.pending</c> observes its queue.
    /// </summary>
    public static IServiceCollection AddRedisSessionHistory(this IServiceCollection services)
    {
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
