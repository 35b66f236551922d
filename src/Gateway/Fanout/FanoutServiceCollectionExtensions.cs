using Microsoft.Extensions.DependencyInjection.Extensions;
using OpencodeGateway.Streaming;

namespace OpencodeGateway.Fanout;

public static class FanoutServiceCollectionExtensions
{
    /// <summary>
    /// Adds the fan-out: it takes the pumps' events (as their <see cref="IUpstreamEventSink"/>), applies them to live
    /// state and delivers them through the registered <see cref="ISessionBroadcaster"/> and in-process subscriptions.
    /// </summary>
    public static IServiceCollection AddFanout(this IServiceCollection services)
    {
        services.TryAddSingleton<SessionEventDispatcher>();
        services.TryAddSingleton<IUpstreamEventSink>(sp => sp.GetRequiredService<SessionEventDispatcher>());
        services.TryAddSingleton<SessionSubscriptions>();
        return services;
    }
}
