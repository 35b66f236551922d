using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Ingest;

namespace OpencodeGateway.Sequencing;

public static class SequencingServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Replay</c> (validated at start) and sequencing: the dispatcher takes the pumps' events (as their
    /// <see cref="IUpstreamEventSink"/>) and applies them to each session's live state (sequence, epochs, replay log,
    /// in-flight text, the tree of sessions and their subagents' sessions), then hands them on.
    /// </summary>
    /// <param name="newObserver">An observer of each session's changes (the cluster's Redis copy), or null.</param>
    internal static IServiceCollection AddSequencing(this IServiceCollection services, IConfiguration configuration,
        Func<ILiveStateObserver>? newObserver)
    {
        services.AddOptions<ReplayOptions>().Bind(configuration.GetSection(ReplayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReplayOptions>, ReplayOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EpochSource>();
        services.TryAddSingleton<SessionTree>();
        services.TryAddSingleton(sp => CreateRegistry(sp, newObserver));
        services.TryAddSingleton<SessionEventDispatcher>();
        services.TryAddSingleton<IUpstreamEventSink>(sp => sp.GetRequiredService<SessionEventDispatcher>());
        return services;
    }

    /// <summary>The registry, with <c>gateway.live_sessions</c> observing its count.</summary>
    private static LiveSessionRegistry CreateRegistry(IServiceProvider services, Func<ILiveStateObserver>? newObserver)
    {
        var registry = new LiveSessionRegistry(services.GetRequiredService<IOptions<ReplayOptions>>(),
            services.GetRequiredService<EpochSource>(), services.GetRequiredService<TimeProvider>())
        {
            NewObserver = newObserver,
        };
        services.GetRequiredService<GatewayMetrics>().ObserveLiveSessions(() => registry.Count);
        return registry;
    }
}
