using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Sessions;

public static class SessionsServiceCollectionExtensions
{
    /// <summary>Adds the session operations shared by the hub and the HTTP API, and the catalog that authorises them.</summary>
    public static IServiceCollection AddSessions(this IServiceCollection services)
    {
        services.TryAddSingleton<SessionService>();
        services.TryAddSingleton<SessionCatalog>();
        return services;
    }
}
