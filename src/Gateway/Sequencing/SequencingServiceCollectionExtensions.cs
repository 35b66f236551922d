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
    public static IServiceCollection AddSequencing(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ReplayOptions>().Bind(configuration.GetSection(ReplayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReplayOptions>, ReplayOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EpochSource>();
        services.TryAddSingleton<SessionTree>();
        services.TryAddSingleton(sp => CreateRegistry(sp, newObserver: null));
        services.TryAddSingleton<SessionEventDispatcher>();
        services.TryAddSingleton<IUpstreamEventSink>(sp => sp.GetRequiredService<SessionEventDispatcher>());
        return services;
    }

    /// <summary>The registry, with <c>gateway.live_sessions</c> observing its count.</summary>
    internal static LiveSessionRegistry CreateRegistry(IServiceProvider services, Func<ILiveStateObserver>? newObserver)
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
