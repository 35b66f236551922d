using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Delivery;

public static class DeliveryServiceCollectionExtensions
{
    /// <summary>
    /// Adds delivery: this node's feeds deliver every watched session's events (read from the history) through the
    /// registered <see cref="ISessionBroadcaster"/> and in-process subscriptions; idle sessions are evicted.
    /// </summary>
    public static IServiceCollection AddDelivery(this IServiceCollection services)
    {
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
