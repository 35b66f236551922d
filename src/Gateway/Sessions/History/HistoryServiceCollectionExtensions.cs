using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Sessions.History;

public static class HistoryServiceCollectionExtensions
{
    /// <summary>Adds the single-node session history (in this process); cluster mode replaces it with Redis.</summary>
    public static IServiceCollection AddLocalSessionHistory(this IServiceCollection services)
    {
        services.TryAddSingleton<ISessionHistory, LocalSessionHistory>();
        return services;
    }
}
