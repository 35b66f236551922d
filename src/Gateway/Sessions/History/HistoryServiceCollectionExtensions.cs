using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Sessions.History;

public static class HistoryServiceCollectionExtensions
{
    /// <summary>Adds <c>Gateway:Replay</c> (validated at start): the bounds of what is kept per session for recovery.</summary>
    public static IServiceCollection AddSessionHistory(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ReplayOptions>().Bind(configuration.GetSection(ReplayOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ReplayOptions>, ReplayOptionsValidator>());
        return services;
    }
}
