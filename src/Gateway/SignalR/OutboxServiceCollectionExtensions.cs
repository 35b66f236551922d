using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.SignalR;

public static class OutboxServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Outbox</c> (validated at start) and replaces SignalR's default lifetime manager with one whose
    /// sends never wait on slow connections.
    /// </summary>
    public static ISignalRServerBuilder AddOutboxLifetimeManager(this ISignalRServerBuilder builder, IConfiguration configuration)
    {
        builder.Services.AddOptions<OutboxOptions>().Bind(configuration.GetSection(OutboxOptions.SectionName)).ValidateOnStart();
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<OutboxOptions>, OutboxOptionsValidator>());
        builder.Services.AddSingleton(typeof(HubLifetimeManager<>), typeof(OutboxHubLifetimeManager<>));
        return builder;
    }
}
