using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Diagnostics;

/// <summary>The gateway's instruments (read with <see cref="MetricCollector{T}"/>), <c>/metrics</c>, and OTLP export.</summary>
[Collection(TelemetryCollection.Name)]
public sealed class TelemetryTests
{
    private static MetricCollector<T> Collector<T>(IServiceProvider services, string instrument) where T : struct =>
        new(services.GetRequiredService<IMeterFactory>(), GatewayMetrics.MeterName, instrument);

    private static async Task<(GatewayHost Host, GatewayHubClient Hub, string SessionId)> WatchedSessionAsync()
    {
        var host = await GatewayHost.StartAsync();
        var hub = await host.ConnectHubAsync("alice");
        var id = (await hub.InvokeAsync("CreateSession", new { title = "metered" })).GetProperty("id").GetString()!;
        await hub.InvokeAsync("Join", new { sessionId = id });
        return (host, hub, id);
    }

    [Fact]
    public async Task Every_dispatched_upstream_event_is_counted_and_timed()
    {
        var (host, hub, id) = await WatchedSessionAsync();
        await using var _ = host;
        await using var __ = hub;
        using var upstreamEvents = Collector<long>(host.Services, "gateway.upstream.events");
        using var sessionEvents = Collector<long>(host.Services, "gateway.session.events");
        using var dispatch = Collector<double>(host.Services, GatewayMetrics.DispatchDurationName);
        using var liveSessions = Collector<int>(host.Services, "gateway.live_sessions");

        for (var i = 0; i < 5; i++)
        {
            host.Upstream.EmitMessage(id);
            Assert.NotNull(await hub.NextAsync("SessionEvent", TimeSpan.FromSeconds(10)));
        }

        var upstream = upstreamEvents.GetMeasurementSnapshot();
        Assert.Equal(5, upstream.EvaluateAsCounter());
        Assert.All(upstream, m => Assert.True(m.MatchesTags(new KeyValuePair<string, object?>("upstream", "local"))));
        Assert.Equal(5, sessionEvents.GetMeasurementSnapshot().EvaluateAsCounter());
        var durations = dispatch.GetMeasurementSnapshot();
        Assert.Equal(5, durations.Count);
        Assert.All(durations, m => Assert.InRange(m.Value, double.Epsilon, 10));
        liveSessions.RecordObservableInstruments();
        Assert.Equal(1, liveSessions.LastMeasurement?.Value);

        // sub-millisecond buckets, so the gateway's share of a delivery stays measurable
        var bounds = ((Histogram<double>)dispatch.Instrument!).Advice!.HistogramBucketBoundaries!;
        Assert.Equal(GatewayMetrics.DispatchBucketBounds, bounds);
        Assert.True(bounds.Count(b => b < 0.001) >= 4);
    }

    [Fact]
    public async Task Joins_and_snapshots_are_timed_and_coded_errors_counted_by_code_and_surface()
    {
        var (host, hub, id) = await WatchedSessionAsync();
        await using var _ = host;
        await using var __ = hub;
        using var joins = Collector<double>(host.Services, "gateway.join.duration");
        using var snapshots = Collector<double>(host.Services, "gateway.snapshot.duration");
        using var snapshotSizes = Collector<long>(host.Services, "gateway.snapshot.size");
        using var errors = Collector<long>(host.Services, "gateway.errors");
        host.Upstream.EmitMessage(id);
        host.Upstream.EmitMessage(id);
        Assert.NotNull(await hub.NextAsync("SessionEvent", TimeSpan.FromSeconds(10)));
        Assert.NotNull(await hub.NextAsync("SessionEvent", TimeSpan.FromSeconds(10)));

        await using var other = await host.ConnectHubAsync("alice");
        var joined = await other.InvokeAsync("Join", new { sessionId = id });
        var position = new { epoch = joined.GetProperty("epoch").GetInt64(), seq = joined.GetProperty("seq").GetInt64() };
        await other.InvokeAsync("Join", new { sessionId = id, since = position });
        await Assert.ThrowsAnyAsync<Exception>(() => other.InvokeAsync("Join", new { sessionId = "ses_missing" }));
        using (var alice = host.HttpClient("alice"))
        {
            Assert.Equal(HttpStatusCode.NotFound, (await alice.GetAsync("api/sessions/ses_missing")).StatusCode);
        }

        Assert.Equal(["snapshot", "recovered", "error"], joins.GetMeasurementSnapshot().Select(m => (string)m.Tags["result"]!));
        Assert.All(joins.GetMeasurementSnapshot(), m => Assert.InRange(m.Value, double.Epsilon, 10));
        Assert.InRange(Assert.Single(snapshots.GetMeasurementSnapshot()).Value, double.Epsilon, 10);
        // The size is the JSON of the snapshot's messages, as the client received them.
        var messages = joined.GetProperty("snapshot").GetProperty("messages").EnumerateArray().ToList();
        var received = messages.Sum(m => Encoding.UTF8.GetByteCount(m.GetProperty("info").GetRawText())
            + m.GetProperty("parts").EnumerateArray().Sum(p => Encoding.UTF8.GetByteCount(p.GetRawText())));
        Assert.Equal(received, Assert.Single(snapshotSizes.GetMeasurementSnapshot()).Value);
        var errorTags = errors.GetMeasurementSnapshot().Select(m => $"{m.Tags["code"]} {m.Tags["surface"]} {m.Value}");
        Assert.Equal(["session_not_found hub 1", "session_not_found http 1"], errorTags);
    }

    [Fact]
    public async Task The_readiness_gauge_publishes_each_readiness_check_as_readyz_runs_them()
    {
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            WaitUntilReady = false,
            Configure = builder => builder.Services.AddHealthChecks()
                .AddCheck("failing", () => HealthCheckResult.Unhealthy("down for the test"), tags: [HealthTags.Ready])
                .AddCheck("not-a-readiness-check", () => HealthCheckResult.Unhealthy()),
        });
        using var ready = Collector<int>(host.Services, "gateway.ready");

        var deadline = DateTime.UtcNow.AddSeconds(10);
        Dictionary<string, int> checks;
        do
        {
            await Task.Delay(100);
            ready.RecordObservableInstruments();
            checks = ready.GetMeasurementSnapshot().GroupBy(m => (string)m.Tags["check"]!).ToDictionary(g => g.Key, g => g.Last().Value);
        }
        while (checks.Count == 0 && DateTime.UtcNow < deadline);

        Assert.Equal(new Dictionary<string, int> { ["store"] = 1, ["failing"] = 0 }, checks);
        using var anonymous = host.HttpClient(null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await anonymous.GetAsync("readyz")).StatusCode);
    }

    [Fact]
    public async Task Metrics_answers_anonymously_in_prometheus_text_with_the_dispatch_histogram()
    {
        var (host, hub, id) = await WatchedSessionAsync();
        await using var _ = host;
        await using var __ = hub;
        host.Upstream.EmitMessage(id);
        Assert.NotNull(await hub.NextAsync("SessionEvent", TimeSpan.FromSeconds(10)));

        using var anonymous = host.HttpClient(null);
        // The pump records an event's dispatch time once it is handed to every watcher, so the client may have it first.
        HttpResponseMessage response;
        string text;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        do
        {
            response = await anonymous.GetAsync("/metrics");
            text = await response.Content.ReadAsStringAsync();
        }
        while (!text.Contains("gateway_pump_dispatch_duration_seconds_count{", StringComparison.Ordinal) && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("# TYPE gateway_pump_dispatch_duration_seconds histogram", text);
        Assert.Contains("gateway_pump_dispatch_duration_seconds_bucket{otel_scope_name=\"OpencodeGateway\",le=\"5E-05\"}", text);
        Assert.Contains("gateway_pump_dispatch_duration_seconds_count{otel_scope_name=\"OpencodeGateway\"} 1", text);
        // A single node holds its upstream's stream under the local lease (token 0).
        Assert.Contains("gateway_upstream_lease_held{otel_scope_name=\"OpencodeGateway\",upstream=\"local\"} 1", text);
        Assert.Contains("gateway_upstream_lease_fencing_token{otel_scope_name=\"OpencodeGateway\",upstream=\"local\"} 0", text);
        Assert.Contains("gateway_upstream_stream_connected{otel_scope_name=\"OpencodeGateway\",upstream=\"local\"} 1", text);
        Assert.Contains("gateway_upstream_events_total{otel_scope_name=\"OpencodeGateway\",upstream=\"local\"} 1", text);
        Assert.Contains("gateway_live_sessions{otel_scope_name=\"OpencodeGateway\"} 1", text);
        Assert.Contains("signalr_server_active_connections{", text);
        // what bench/ reads per delivered event: process CPU, allocated bytes, thread-pool work items
        Assert.Contains("dotnet_process_cpu_time_seconds_total{", text);
        Assert.Contains("dotnet_gc_heap_total_allocated_bytes_total{", text);
        Assert.Contains("dotnet_thread_pool_work_item_count_total{", text);
    }

    [Fact]
    public async Task With_an_otlp_endpoint_traces_and_metrics_are_exported()
    {
        var received = new ConcurrentQueue<(string Path, byte[] Body)>();
        var (collector, collectorUrl) = await LoopbackApp.StartAsync(app =>
        {
            foreach (var signal in new[] { "traces", "metrics", "logs" })
            {
                app.MapPost($"/v1/{signal}", async (HttpRequest request) =>
                {
                    using var body = new MemoryStream();
                    await request.Body.CopyToAsync(body);
                    received.Enqueue((request.Path, body.ToArray()));
                    return Results.Bytes([], "application/x-protobuf");
                });
            }
        });
        await using var ___ = collector;
        await using var upstream = await FakeOpencode.StartAsync();
        upstream.AddSession("ses_traced");
        await using var gateway = await GatewayHost.StartAsync(upstream.BaseUrl,
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collectorUrl), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"), ("OTEL_METRIC_EXPORT_INTERVAL", "200"));

        await using (await ObservedSession.StartAsync(gateway.HubUrl, "ses_traced", options: GatewayHost.AsAdmin()))
        {
        }

        bool Exported(string path, string text) =>
            received.Any(r => r.Path == path && r.Body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) >= 0);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string[] spans = ["gateway.join", "gateway.snapshot", "opencode.GetMessagePage", "OpencodeGateway.Hubs.SessionHub/Join"];
        while (!(spans.All(s => Exported("/v1/traces", s)) && Exported("/v1/metrics", "gateway.live_sessions")))
        {
            Assert.True(DateTime.UtcNow < deadline,
                $"not exported: {string.Join(", ", spans.Where(s => !Exported("/v1/traces", s)))}; metrics: {received.Count(r => r.Path == "/v1/metrics")} posts");
            await Task.Delay(50);
        }
    }
}

/// <summary>
/// OpenTelemetry's MeterProvider listens to every meter named <c>OpencodeGateway</c> in the process, whichever host
/// created it (measured: a host with no session scraped <c>gateway_live_sessions 1</c> from another host's session), so
/// the tests that read <c>/metrics</c> run alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TelemetryCollection
{
    public const string Name = "telemetry";
}
