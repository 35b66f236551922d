using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Sessions.Live;

public static class LiveSessionsServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Replay</c> (validated at start) and the live state of sessions: sequence, epochs, replay log,
    /// in-flight text.
    /// </summary>
    public static IServiceCollection AddLiveSessions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ReplayOptions>().Bind(configuration.GetSection(ReplayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReplayOptions>, ReplayOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EpochSource>();
        services.TryAddSingleton<LiveSessionRegistry>();
        return services;
    }
}
