using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace OpencodeGateway.Diagnostics;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>The standard OpenTelemetry variable that switches OTLP export on (traces, metrics and logs).</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Adds the gateway's instruments and OpenTelemetry: metrics of the gateway's meter, ASP.NET Core (SignalR and
    /// Kestrel included), HttpClient and the runtime, served at <c>/metrics</c> by the Prometheus exporter; and, when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, OTLP export of those metrics, of traces (the gateway's activities,
    /// SignalR hub invocations, ASP.NET Core requests, HttpClient calls) and of logs. Every other <c>OTEL_*</c>
    /// variable (protocol, headers, service name, intervals) works as the OpenTelemetry SDK documents it.
    /// </summary>
    public static IServiceCollection AddGatewayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddMetrics();
        services.TryAddSingleton<GatewayMetrics>();
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("opencode-gateway"))
            .WithMetrics(metrics => metrics
                .AddMeter(GatewayMetrics.MeterName)
                // Retries and circuit-breaker transitions of the upstreams' REST clients.
                .AddMeter("Polly")
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                // Each scrape reads the instruments now: a benchmark reads before and after a run.
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        services.AddHostedService<GatewayMetricsStarter>();
        if (!string.IsNullOrWhiteSpace(configuration[OtlpEndpointKey]))
        {
            // Traces only when exported: without a listener no activity is created at all.
            telemetry.WithTracing(tracing => tracing
                    .AddSource(GatewayTelemetry.ActivitySourceName)
                    .AddSource("Microsoft.AspNetCore.SignalR.Server")
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation())
                .UseOtlpExporter();
        }

        return services;
    }

    /// <summary><c>GET /metrics</c>: the Prometheus text format, without authentication (where it is served decides who sees it).</summary>
    public static IEndpointConventionBuilder MapGatewayMetrics(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapPrometheusScrapingEndpoint("/metrics").AllowAnonymous();
}
