using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Hubs;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.SignalR;

namespace OpencodeGateway.Diagnostics;

/// <summary>
/// <c>GET /metrics</c> in the Prometheus text format (0.0.4), written by hand because no Prometheus or
/// OpenTelemetry exporter package is available here. The same instruments are on the <c>OpencodeGateway</c> meter
/// for any in-process listener (dotnet-counters, an OpenTelemetry SDK).
/// </summary>
internal static class MetricsEndpoint
{
    public static IEndpointRouteBuilder MapGatewayMetrics(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/metrics", (HttpContext context) =>
        {
            var services = context.RequestServices;
            var text = Write(services.GetRequiredService<GatewayMetrics>(),
                (services.GetRequiredService<HubLifetimeManager<SessionHub>>() as OutboxHubLifetimeManager<SessionHub>)?.ConnectionCount,
                services.GetRequiredService<LiveSessionRegistry>().Count);
            return Results.Text(text, "text/plain; version=0.0.4; charset=utf-8");
        }).AllowAnonymous();
        return endpoints;
    }

    private static string Write(GatewayMetrics metrics, int? connections, int liveSessions)
    {
        var s = new StringBuilder();
        Counter(s, "gateway_upstream_events_total", "Events read from upstream event streams.", metrics.UpstreamEvents);
        Counter(s, "gateway_upstream_events_malformed_total", "Upstream event lines skipped as malformed.", metrics.MalformedEvents);
        Counter(s, "gateway_upstream_stream_connects_total", "Upstream event stream connections established.", metrics.StreamConnects);
        Counter(s, "gateway_upstream_reconnects_total", "Reconnects of upstream event streams.", metrics.Reconnects);
        Counter(s, "gateway_session_events_total", "Session events fanned out to session groups.", metrics.EventsSent);
        Counter(s, "gateway_connections_slow_dropped_total", "Connections dropped because their outbox overflowed.", metrics.SlowConsumersDropped);
        if (connections is { } open)
        {
            Gauge(s, "gateway_connections", "Open hub connections.", open);
        }

        Gauge(s, "gateway_live_sessions", "Sessions with live state (watched or recently active).", liveSessions);

        // The runtime's share of each delivery, so a benchmark (or a dashboard) can divide by events delivered.
        Counter(s, "dotnet_gc_allocated_bytes_total", "Bytes allocated on the managed heap since start.", GC.GetTotalAllocatedBytes());
        Counter(s, "dotnet_thread_pool_completed_work_items_total", "Thread-pool work items completed since start.",
            ThreadPool.CompletedWorkItemCount);
        s.Append("# HELP process_cpu_seconds_total User and system CPU time of the process.\n")
         .Append("# TYPE process_cpu_seconds_total counter\n")
         .Append("process_cpu_seconds_total ").Append(Environment.CpuUsage.TotalTime.TotalSeconds.ToString("R", CultureInfo.InvariantCulture)).Append('\n');

        const string histogram = "gateway_pump_dispatch_duration_seconds";
        s.Append("# HELP ").Append(histogram)
            .Append(" From an upstream event's bytes arriving to the event being written or queued for every watching connection.\n");
        s.Append("# TYPE ").Append(histogram).Append(" histogram\n");
        var counts = metrics.DispatchDuration.Counts();
        long cumulative = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            cumulative += counts[i];
            var le = i < GatewayMetrics.DispatchBucketBounds.Length
                ? GatewayMetrics.DispatchBucketBounds[i].ToString("R", CultureInfo.InvariantCulture)
                : "+Inf";
            s.Append(histogram).Append("_bucket{le=\"").Append(le).Append("\"} ").Append(cumulative).Append('\n');
        }

        s.Append(histogram).Append("_sum ").Append(metrics.DispatchDuration.SumSeconds.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        s.Append(histogram).Append("_count ").Append(cumulative).Append('\n');
        return s.ToString();
    }

    private static void Counter(StringBuilder s, string name, string help, long value) => Sample(s, name, help, "counter", value);

    private static void Gauge(StringBuilder s, string name, string help, long value) => Sample(s, name, help, "gauge", value);

    private static void Sample(StringBuilder s, string name, string help, string type, long value) =>
        s.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
         .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n')
         .Append(name).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
}
