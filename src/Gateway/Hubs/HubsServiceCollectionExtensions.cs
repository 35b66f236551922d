using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Fanout;
using OpencodeGateway.Sessions;
using OpencodeGateway.SignalR;

namespace OpencodeGateway.Hubs;

public static class HubsServiceCollectionExtensions
{
    /// <summary>Adds SignalR with the session hub's error filter, JSON protocol and the outbox lifetime manager.</summary>
    public static IServiceCollection AddSessionHub(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SessionHubOptions>().Bind(configuration.GetSection(SessionHubOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SessionHubOptions>, SessionHubOptionsValidator>());
        services.AddOptions<HubOptions>().Configure<IOptions<SessionHubOptions>>((hub, options) =>
            hub.MaximumReceiveMessageSize = options.Value.MaximumReceiveMessageSize);
        services.AddSignalR(o =>
            {
                o.AddFilter<GatewayErrorHubFilter>();
                // The error filter turns every method failure into a coded HubException, so detail leaks nothing
                // internal; it lets a closed connection tell its client why (e.g. a message over the size limit).
                o.EnableDetailedErrors = true;
            })
            // Absent rather than null: fewer bytes per event, and one shape for optional members.
            .AddJsonProtocol(o => o.PayloadSerializerOptions.DefaultIgnoreCondition =
                System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)
            .AddOutboxLifetimeManager(configuration);
        services.TryAddSingleton<ILocalGroupManager<SessionHub>>(sp =>
            (ILocalGroupManager<SessionHub>)sp.GetRequiredService<HubLifetimeManager<SessionHub>>());
        services.TryAddSingleton<ISessionBroadcaster, SessionHubBroadcaster>();
        services.TryAddSingleton<ISessionListNotifier, SessionListBroadcaster>();
        return services;
    }

    /// <summary>Maps the session hub at <c>/hubs/session</c>.</summary>
    public static IEndpointRouteBuilder MapSessionHub(this IEndpointRouteBuilder endpoints)
    {
        // A connection whose token expires is closed; the client reconnects with a fresh token.
        endpoints.MapHub<SessionHub>("/hubs/session", o => o.CloseOnAuthenticationExpiration = true);
        return endpoints;
    }
}
