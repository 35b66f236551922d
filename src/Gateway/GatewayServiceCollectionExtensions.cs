using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Api;
using OpencodeGateway.Auth;
using OpencodeGateway.Chat;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Health;
using OpencodeGateway.Hubs;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Sessions.Store;
using OpencodeGateway.SignalR;
using OpencodeGateway.Streaming;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the gateway: options (validated at start), upstreams, event pumps, live sessions, the session store and
    /// catalog, authentication, the session hub.
    /// </summary>
    public static IServiceCollection AddOpencodeGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayOptions>()
            .Bind(configuration.GetSection(GatewayOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>());

        services.TryAddSingleton(TimeProvider.System);
        services.AddGatewayTelemetry(configuration);
        services.AddUpstreams();
        services.TryAddSingleton<UpstreamStreamState>();
        services.TryAddSingleton<EpochSource>();
        services.TryAddSingleton(sp =>
        {
            var live = ActivatorUtilities.CreateInstance<LiveSessionRegistry>(sp);
            sp.GetRequiredService<GatewayMetrics>().ObserveLiveSessions(() => live.Count);
            return live;
        });
        services.TryAddSingleton<SnapshotBuilder>();
        services.TryAddSingleton<SessionService>();
        services.AddGatewayStore(configuration);
        services.AddGatewayAuth(configuration);
        services.AddGatewayApi();
        services.TryAddSingleton<SessionCatalog>();
        services.TryAddSingleton<SessionEventDispatcher>();
        services.TryAddSingleton<SessionSubscriptions>();
        services.TryAddSingleton<ChatStreams>();
        services.AddHostedService<EventPumpService>();

        services.AddSignalR(o =>
            {
                o.AddFilter<GatewayErrorHubFilter>();
                o.MaximumReceiveMessageSize = 512 * 1024;
            })
            // Absent rather than null: fewer bytes per event, and one shape for optional members.
            .AddJsonProtocol(o => o.PayloadSerializerOptions.DefaultIgnoreCondition =
                System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)
            .AddOutboxLifetimeManager();
        services.AddHealthChecks().AddCheck<UpstreamStreamHealthCheck>("upstreams", tags: [HealthEndpoints.ReadyTag]);
        return services;
    }

    /// <summary>Replaces SignalR's default lifetime manager with one whose sends never wait on slow connections.</summary>
    public static ISignalRServerBuilder AddOutboxLifetimeManager(this ISignalRServerBuilder builder)
    {
        builder.Services.AddSingleton(typeof(HubLifetimeManager<>), typeof(OutboxHubLifetimeManager<>));
        return builder;
    }

    /// <summary>
    /// Refuses new hub and stream connections (503, <c>Retry-After</c>) once the host is stopping: SignalR closes
    /// every connection at that moment, and clients must reconnect to another node, not to this one.
    /// </summary>
    public static IApplicationBuilder UseShutdownGate(this IApplicationBuilder app)
    {
        var stopping = app.ApplicationServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        return app.Use(async (context, next) =>
        {
            if (stopping.IsCancellationRequested
                && (context.Request.Path.StartsWithSegments("/hubs") || context.Request.Path.StartsWithSegments("/api/chat")))
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = "1";
                return;
            }

            await next(context);
        });
    }

    /// <summary>
    /// Maps <c>/hubs/session</c> and <c>/api/sessions</c> (authenticated), <c>/healthz</c> and <c>/readyz</c> (anonymous).
    /// Call <c>UseAuthentication</c> and <c>UseAuthorization</c> before (see <see cref="GatewayApplication"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapOpencodeGateway(this IEndpointRouteBuilder endpoints)
    {
        // A connection whose token expires is closed; the client reconnects with a fresh token.
        endpoints.MapHub<SessionHub>("/hubs/session", o => o.CloseOnAuthenticationExpiration = true);
        endpoints.MapSessionsApi();
        endpoints.MapGatewayHealth();
        endpoints.MapGatewayMetrics();
        endpoints.MapChatApi();
        endpoints.MapGatewayOpenApi();
        return endpoints;
    }
}
