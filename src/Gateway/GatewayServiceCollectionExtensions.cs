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
    /// Adds the gateway along its event path (upstreams → ingest → sequencing → history → snapshots → delivery → hub),
    /// the session store and catalog, authentication, limits, and the HTTP endpoints' services. Every options section is
    /// validated at start. Single node or cluster node is decided once, below, by <c>ConnectionStrings:Redis</c>.
    /// </summary>
    public static IServiceCollection AddOpencodeGateway(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddGatewayTelemetry(configuration);
        var cluster = services.AddGatewayCluster(configuration);
        services.AddUpstreams(configuration);
        services.AddUpstreamStreaming(configuration);
        services.AddSequencing(configuration, newObserver: cluster ? HistoryServiceCollectionExtensions.NewRedisMirror : null);
        services.AddSnapshots(configuration);
        services.AddDelivery();
        services.AddSessionHub(configuration);
        services.AddGatewayStore(configuration);
        services.AddGatewayAuth(configuration);
        services.AddGatewayLimits(configuration);
        // What a cluster node shares through Redis, a single node keeps in this process: the leases on the upstreams'
        // streams, the history, the hub's groups across nodes, the limits' counts.
        if (cluster)
        {
            services.AddRedisUpstreamLeases();
            services.AddRedisSessionHistory();
            services.AddFeedHeadChecks();
            services.AddRedisOutboxBackplane(sp => sp.GetRequiredService<RedisConnection>().Keys.Backplane,
                sp => sp.GetRequiredService<RedisConnection>().ConnectedAsync());
            services.AddRedisUserCounters();
        }
        else
        {
            services.AddLocalUpstreamLeases();
            services.AddLocalSessionHistory();
            services.AddLocalUserCounters();
        }

        services.AddSessions(configuration);
        services.AddGatewayApi();
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
