using OpencodeGateway.AiSdk;
using OpencodeGateway.Api;
using OpencodeGateway.Auth;
using OpencodeGateway.Chat;
using OpencodeGateway.Cluster;
using OpencodeGateway.Cors;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery;
using OpencodeGateway.Health;
using OpencodeGateway.Hubs;
using OpencodeGateway.Leases;
using OpencodeGateway.Limits;
using OpencodeGateway.Sessions;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Store;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway;

/// <summary>The composition root: each component's <c>AddXxx</c> sits beside the component.</summary>
public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Adds the gateway along its event path (upstreams → pumps → live state → fan-out → hub), the session store and
    /// catalog, authentication, and the HTTP endpoints' services. Every options section is validated at start.
    /// </summary>
    public static IServiceCollection AddOpencodeGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddGatewayTelemetry(configuration);
        services.AddUpstreams(configuration);
        // Cluster mode (ConnectionStrings:Redis) puts leases, history and the backplane in Redis; the single-node
        // defaults below are only added where cluster mode added nothing.
        var cluster = services.AddGatewayCluster(configuration);
        if (cluster)
        {
            services.AddRedisUpstreamLeases();
            services.AddRedisSessionHistory();
            services.AddFeedHeadChecks();
        }

        services.AddUpstreamStreaming(configuration);
        services.AddSequencing(configuration);
        services.AddLocalSessionHistory();
        services.AddSnapshots(configuration);
        services.AddDelivery();
        services.AddSessionHub(configuration);
        if (cluster)
        {
            services.AddRedisOutboxBackplane(sp => sp.GetRequiredService<RedisConnection>().Keys.Backplane,
                sp => sp.GetRequiredService<RedisConnection>().ConnectedAsync());
        }
        services.AddGatewayStore(configuration);
        services.AddGatewayAuth(configuration);
        services.AddGatewayLimits(configuration, cluster);
        services.AddSessions(configuration);
        services.AddGatewayApi();
        services.AddChatApi();
        services.AddGatewayCors(configuration);
        services.AddGatewayAiSdk();
        services.AddGatewayManagement(configuration);
        services.AddGatewayReadinessGauge();
        return services;
    }

    /// <summary>
    /// Refuses new hub and stream connections (503, <c>Retry-After</c>) that this node cannot serve: once the host is
    /// stopping (SignalR closes every connection then, and clients must reconnect to another node, not to this one) and,
    /// in a cluster, while Redis is unreachable (a connection could not be registered with the backplane nor receive
    /// the events of sessions another node sequences; the ones already open keep what they have). Clients retry.
    /// </summary>
    public static IApplicationBuilder UseAdmissionGate(this IApplicationBuilder app)
    {
        var stopping = app.ApplicationServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        var redis = app.ApplicationServices.GetService<RedisConnection>();
        return app.Use(async (context, next) =>
        {
            if ((stopping.IsCancellationRequested || redis is { IsConnected: false })
                && (context.Request.Path.StartsWithSegments("/hubs") || context.Request.Path.StartsWithSegments("/api/chat")
                    || context.Request.Path.StartsWithSegments("/api/ai-sdk")))
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = "1";
                return;
            }

            await next(context);
        });
    }

    /// <summary>
    /// Maps <c>/hubs/session</c>, <c>/api/sessions</c>, <c>/api/upstreams</c> and <c>/api/chat</c> (authenticated),
    /// <c>/healthz</c> and <c>/readyz</c> (anonymous), and the internals <c>/metrics</c> and <c>/openapi/v1.json</c>
    /// (only on the management URLs, or to admins in Production: <c>Gateway:Management</c>). Call <c>UseAuthentication</c> and <c>UseAuthorization</c> before
    /// (see <see cref="GatewayApplication"/>).
    /// </summary>
    public static IEndpointRouteBuilder MapOpencodeGateway(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapSessionHub();
        endpoints.MapSessionsApi();
        endpoints.MapUpstreamsApi();
        endpoints.MapGatewayHealth();
        endpoints.MapGatewayMetrics().RequireManagementAccess();
        endpoints.MapChatApi();
        endpoints.MapGatewayAiSdk();
        endpoints.MapGatewayOpenApi().RequireManagementAccess();
        return endpoints;
    }
}
