using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Sessions.Live;

public static class LiveSessionsServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Replay</c> (validated at start) and the live state of sessions: sequence, epochs, replay log,
    /// in-flight text, and the tree of sessions and their subagents' sessions.
    /// </summary>
    public static IServiceCollection AddLiveSessions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ReplayOptions>().Bind(configuration.GetSection(ReplayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReplayOptions>, ReplayOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EpochSource>();
        services.TryAddSingleton<SessionTree>();
        services.TryAddSingleton(sp => CreateRegistry(sp, mirror: false));
        return services;
    }

    /// <summary>The registry, with <c>gateway.live_sessions</c> observing its count.</summary>
    internal static LiveSessionRegistry CreateRegistry(IServiceProvider services, bool mirror)
    {
        var registry = new LiveSessionRegistry(services.GetRequiredService<IOptions<ReplayOptions>>(),
            services.GetRequiredService<EpochSource>(), services.GetRequiredService<TimeProvider>())
        {
            Mirror = mirror,
        };
        services.GetRequiredService<GatewayMetrics>().ObserveLiveSessions(() => registry.Count);
        return registry;
    }
}
