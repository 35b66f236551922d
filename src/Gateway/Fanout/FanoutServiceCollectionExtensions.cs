using Microsoft.Extensions.DependencyInjection.Extensions;
using OpencodeGateway.Streaming;

namespace OpencodeGateway.Fanout;

public static class FanoutServiceCollectionExtensions
{
    /// <summary>
    /// Adds the fan-out: the dispatcher takes the pumps' events (as their <see cref="IUpstreamEventSink"/>), applies
    /// them to live state and appends them to the history; this node's feeds deliver every watched session's events
    /// through the registered <see cref="ISessionBroadcaster"/> and in-process subscriptions.
    /// </summary>
    public static IServiceCollection AddFanout(this IServiceCollection services)
    {
        services.TryAddSingleton<SessionEventDispatcher>();
        services.TryAddSingleton<IUpstreamEventSink>(sp => sp.GetRequiredService<SessionEventDispatcher>());
        services.TryAddSingleton<SessionSubscriptions>();
        services.TryAddSingleton<SessionFeeds>();
        services.AddHostedService<IdleSessionEvictionService>();
        return services;
    }

    /// <summary>Adds the periodic comparison of this node's feeds with the cluster's history (cluster mode).</summary>
    public static IServiceCollection AddFeedHeadChecks(this IServiceCollection services)
    {
        services.AddHostedService<FeedHeadCheckService>();
        return services;
    }
}
