using System.Globalization;
using System.Net;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Diagnostics;

public sealed class MetricsEndpointTests
{
    private static Dictionary<string, double> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith('#'))
            .Select(l => l.Split(' '))
            .ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));

    [Fact]
    public async Task Metrics_are_anonymous_prometheus_text_and_time_every_dispatched_upstream_event()
    {
        await using var host = await GatewayHost.StartAsync();
        using var anonymous = host.HttpClient(userId: null);
        await using var hub = await host.ConnectHubAsync("alice");
        var id = (await hub.InvokeAsync("CreateSession", new { title = "metered" })).GetProperty("id").GetString()!;
        await hub.InvokeAsync("Join", new { sessionId = id });
        for (var i = 0; i < 5; i++)
        {
            host.Upstream.EmitMessage(id);
            Assert.NotNull(await hub.NextAsync("SessionEvent", TimeSpan.FromSeconds(10)));
        }

        var response = await anonymous.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE gateway_pump_dispatch_duration_seconds histogram", text);
        var samples = Parse(text);

        Assert.True(samples["gateway_upstream_events_total"] >= 5);
        Assert.Equal(1, samples["gateway_connections"]);
        Assert.Equal(1, samples["gateway_upstream_stream_connects_total"]);
        var buckets = samples.Where(s => s.Key.StartsWith("gateway_pump_dispatch_duration_seconds_bucket", StringComparison.Ordinal))
            .Select(s => s.Value).ToList();
        Assert.Equal(14, buckets.Count);
        Assert.Equal(buckets.Order(), buckets); // cumulative
        Assert.Equal(samples["gateway_upstream_events_total"], samples["gateway_pump_dispatch_duration_seconds_count"]);
        Assert.Equal(buckets[^1], samples["gateway_pump_dispatch_duration_seconds_count"]);
        Assert.InRange(samples["gateway_pump_dispatch_duration_seconds_sum"], double.Epsilon, 5 * 10);
    }
}
