using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Sessions.Internal;

namespace OpencodeGateway.Sessions;

public static class SessionsServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Prompts</c> (validated at start), the session operations shared by the hub and the HTTP API, and
    /// the catalog that authorises them.
    /// </summary>
    public static IServiceCollection AddSessions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<PromptOptions>().Bind(configuration.GetSection(PromptOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PromptOptions>, PromptOptionsValidator>());
        services.TryAddSingleton<PromptAdmission>();
        services.TryAddSingleton<SessionService>();
        services.TryAddSingleton<SessionWatches>();
        services.TryAddSingleton<SessionCatalog>();
        return services;
    }
}
