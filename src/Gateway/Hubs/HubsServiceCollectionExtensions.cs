using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpencodeGateway.Contracts.Serialization;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.Sessions;

namespace OpencodeGateway.Hubs;

public static class HubsServiceCollectionExtensions
{
    private const string HostingDiagnosticsCategory = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>
    /// Adds SignalR with the session hub's error filter, the JSON and MessagePack protocols and the outbox lifetime
    /// manager, and the broadcaster that sends each session's events in full and compact form.
    /// </summary>
    public static IServiceCollection AddSessionHub(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SessionHubOptions>().Bind(configuration.GetSection(SessionHubOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SessionHubOptions>, SessionHubOptionsValidator>());
        services.AddOptions<HubOptions>().Configure<IOptions<SessionHubOptions>, IOptions<PromptOptions>>((hub, options, prompts) =>
        {
            hub.MaximumReceiveMessageSize = SessionHubOptions.Effective(options.Value, prompts.Value);
            hub.KeepAliveInterval = options.Value.KeepAliveInterval;
            hub.ClientTimeoutInterval = options.Value.ClientTimeoutInterval;
        });
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
            // The same contract as maps (names and absent members as in JSON), opencode's objects as MessagePack values.
            .AddMessagePackProtocol(o => o.SerializerOptions = GatewayMessagePack.SerializerOptions)
            .AddOutboxLifetimeManager(configuration);
        // ASP.NET Core's hosting layer starts an Activity for every request while its log category is enabled (for log
        // scopes), and a hub connection is one request for its whole life: 0.9 KB of live objects per idle connection,
        // measured (docs/benchmarks.md). Off unless configured; a tracer (an ActivityListener) still gets its Activity.
        if (configuration[$"Logging:LogLevel:{HostingDiagnosticsCategory}"] is null)
        {
            services.Configure<LoggerFilterOptions>(o => o.AddFilter(HostingDiagnosticsCategory, LogLevel.None));
        }

        services.TryAddSingleton(sp => new SilentConnections(sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<GatewayMetrics>(),
            sp.GetRequiredService<ILogger<SilentConnections>>())
        {
            Timeout = sp.GetRequiredService<IOptions<SessionHubOptions>>().Value.ClientTimeoutInterval,
        });
        services.AddHostedService(sp => sp.GetRequiredService<SilentConnections>());
        services.TryAddSingleton<CompactSessions>();
        services.TryAddSingleton<ILocalGroupManager<SessionHub>>(sp =>
            (ILocalGroupManager<SessionHub>)sp.GetRequiredService<HubLifetimeManager<SessionHub>>());
        services.TryAddSingleton<ISessionBroadcaster, SessionHubBroadcaster>();
        services.TryAddSingleton<ISessionListNotifier, SessionListBroadcaster>();
        return services;
    }

    /// <summary>
    /// Closes hub WebSockets whose client sends nothing for <c>Gateway:Hub:ClientTimeoutInterval</c>
    /// (<see cref="SilentConnections"/>); before the hub is mapped.
    /// </summary>
    public static IApplicationBuilder UseSilentHubConnectionWatch(this IApplicationBuilder app) =>
        SilentConnections.UseSilentConnectionWatch(app, "/hubs");

    /// <summary>Kestrel connection middleware of <see cref="SilentConnections"/>: every connection notes when it last received bytes.</summary>
    public static void UseReceiveClocks(this KestrelServerOptions kestrel) =>
        kestrel.ConfigureEndpointDefaults(listen => listen.Use(next => kestrel.ApplicationServices.GetRequiredService<SilentConnections>().Middleware(next)));

    /// <summary>Maps the session hub at <c>/hubs/session</c>.</summary>
    public static IEndpointRouteBuilder MapSessionHub(this IEndpointRouteBuilder endpoints)
    {
        // A connection whose token expires is closed; the client reconnects with a fresh token.
        endpoints.MapHub<SessionHub>("/hubs/session", o => o.CloseOnAuthenticationExpiration = true);
        return endpoints;
    }
}
