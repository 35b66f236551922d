using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Health;

public static class HealthEndpoints
{
    /// <summary>
    /// Adds <c>Gateway:Management</c> (validated at start) and the rule of who may see the internals.
    /// </summary>
    public static IServiceCollection AddGatewayManagement(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ManagementOptions>().Bind(configuration.GetSection(ManagementOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ManagementOptions>, ManagementOptionsValidator>());
        services.TryAddSingleton<ManagementAccess>();
        return services;
    }

    /// <summary>
    /// Adds <c>gateway.ready</c>: the readiness checks (those of <c>/readyz</c>) run every
    /// <see cref="ReadinessGauge.Period"/> from shortly after start, each one's last result published by check.
    /// </summary>
    public static IServiceCollection AddGatewayReadinessGauge(this IServiceCollection services)
    {
        services.AddHealthChecks();
        services.Configure<HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.FromSeconds(1);
            o.Period = ReadinessGauge.Period;
            o.Predicate = c => c.Tags.Contains(HealthTags.Ready);
        });
        services.TryAddSingleton<ReadinessGauge>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHealthCheckPublisher, ReadinessGauge>(sp =>
        {
            var gauge = sp.GetRequiredService<ReadinessGauge>();
            sp.GetRequiredService<GatewayMetrics>().ObserveReadiness(() => gauge.Last);
            return gauge;
        }));
        return services;
    }

    /// <summary>
    /// Serves an endpoint of the internals only where <see cref="ManagementAccess"/> allows it: elsewhere
    /// <see cref="UseManagementAccess"/> answers 404, as if it did not exist.
    /// </summary>
    public static TBuilder RequireManagementAccess<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(ManagementEndpoint.Instance);

    /// <summary>After authentication (admins may see the internals where there is no management URL).</summary>
    public static IApplicationBuilder UseManagementAccess(this IApplicationBuilder app)
    {
        var access = app.ApplicationServices.GetRequiredService<ManagementAccess>();
        return app.Use((context, next) =>
        {
            if (context.GetEndpoint()?.Metadata.GetMetadata<ManagementEndpoint>() is not null && !access.Allows(context))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            return next(context);
        });
    }

    /// <summary>
    /// <c>/healthz</c>: the process answers. <c>/readyz</c>: this node can serve (its session store answers; in a cluster,
    /// Redis too). Both answer JSON: the status, and each check's where the internals may be seen.
    /// </summary>
    internal static IEndpointRouteBuilder MapGatewayHealth(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync });
        endpoints.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains(HealthTags.Ready), ResponseWriter = WriteAsync });
        return endpoints;
    }

    /// <summary>The status; each check's too where the internals may be seen (<see cref="ManagementAccess"/>).</summary>
    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        object body = context.RequestServices.GetRequiredService<ManagementAccess>().Allows(context)
            ? new
            {
                status = report.Status.ToString(),
                checks = report.Entries.ToDictionary(e => e.Key, e => new
                {
                    status = e.Value.Status.ToString(),
                    description = e.Value.Description,
                    data = e.Value.Data,
                }),
            }
            : new { status = report.Status.ToString() };
        return JsonSerializer.SerializeAsync(context.Response.Body, body, JsonSerializerOptions.Web, context.RequestAborted);
    }
}
