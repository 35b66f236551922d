using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Sessions.Live;

public static class LiveSessionsServiceCollectionExtensions
{
    /// <summary>Adds the live state of sessions (sequence, epochs, in-flight text), snapshots and idle eviction.</summary>
    public static IServiceCollection AddLiveSessions(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EpochSource>();
        services.TryAddSingleton<LiveSessionRegistry>();
        services.TryAddSingleton<SnapshotBuilder>();
        services.AddHostedService<LiveSessionEvictionService>();
        return services;
    }
}
