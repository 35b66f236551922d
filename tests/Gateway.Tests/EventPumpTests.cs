using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests;

/// <summary>The pump and the hub against a fake upstream whose stream the test controls.</summary>
public class EventPumpTests
{
    private const string Session = "ses_fake1";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private static string Delta(string partId, string delta) => JsonSerializer.Serialize(new
    {
        directory = "/p", project = "p",
        payload = new { id = "evt_x", type = "message.part.delta", properties = new { sessionID = Session, messageID = "msg_1", partID = partId, field = "text", delta } },
    });

    private static async Task<(FakeOpencode Fake, GatewayHost Gateway)> StartAsync(params (string, string)[] settings)
    {
        var fake = await FakeOpencode.StartAsync();
        fake.AddSession(Session);
        var gateway = await GatewayHost.StartAsync(fake.BaseUrl, settings);
        await WaitAsync(() => fake.StreamConnections >= 1, "stream connected");
        return (fake, gateway);
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_garbage_line_is_skipped_and_counted_and_the_stream_goes_on()
    {
        var (fake, gateway) = await StartAsync();
        await using var _ = fake;
        await using var __ = gateway;
        await using var watcher = await SessionWatcher.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        using var malformed = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.upstream.events.malformed");

        fake.Emit("{this is not json");
        fake.EmitRaw("no-colon-field-line\n\n");
        fake.Emit(Delta("prt_1", "hello "));
        fake.Emit(Delta("prt_1", "world"));

        await watcher.WaitUntilAsync(w => w.Model.AllText().Contains("hello world", StringComparison.Ordinal), Timeout, "deltas after garbage");
        Assert.Equal(1, malformed.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(1, fake.StreamConnections);
    }

    [Fact]
    public async Task One_upstream_stream_serves_every_watcher()
    {
        var (fake, gateway) = await StartAsync();
        await using var _ = fake;
        await using var __ = gateway;
        var watchers = new List<SessionWatcher>();
        for (var i = 0; i < 5; i++)
        {
            watchers.Add(await SessionWatcher.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin()));
        }

        for (var i = 0; i < 20; i++)
        {
            fake.Emit(Delta("prt_1", $"t{i} "));
        }

        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => x.Model.AllText().Contains("t19 ", StringComparison.Ordinal), Timeout, "all deltas");
            Assert.Equal(20, w.Read(x => x.EventsApplied));
            await w.DisposeAsync();
        }

        Assert.Equal(1, fake.StreamConnections);
    }

    [Fact]
    public async Task A_silent_stream_is_treated_as_stalled_and_reconnected()
    {
        var (fake, gateway) = await StartAsync(("Gateway:Streaming:StallTimeout", "00:00:01"),
            ("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.050"), ("Gateway:Streaming:ReconnectMaxDelay", "00:00:00.200"));
        await using var _ = fake;
        await using var __ = gateway;
        using var reconnects = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.upstream.reconnects");
        await WaitAsync(() => fake.StreamConnections >= 2, "reconnect after stall");
        Assert.Contains(reconnects.GetMeasurementSnapshot(), m => m.Value == 1 && m.MatchesTags(new KeyValuePair<string, object?>("upstream", "local")));
    }

    [Fact]
    public async Task After_a_cut_stream_watchers_get_a_new_epoch_and_a_fresh_snapshot()
    {
        var (fake, gateway) = await StartAsync(("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.050"),
            ("Gateway:Streaming:ReconnectMaxDelay", "00:00:00.200"));
        await using var _ = fake;
        await using var __ = gateway;
        await using var watcher = await SessionWatcher.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        fake.Emit(Delta("prt_1", "before "));
        await watcher.WaitUntilAsync(w => w.Model.AllText().Contains("before", StringComparison.Ordinal), Timeout, "first delta");
        var firstEpoch = watcher.Read(w => w.Model.Epoch);

        // What opencode stored meanwhile; the streamed text in the gap is lost upstream.
        fake.AddSession(Session, JsonSerializer.SerializeToElement(new
        {
            info = new { id = "msg_1", sessionID = Session, role = "assistant" },
            parts = new[] { new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "before and after" } },
        }));
        fake.CutStream();
        await WaitAsync(() => fake.StreamConnections >= 2, "reconnect");
        await watcher.WaitUntilAsync(w => w.Model.Epoch > firstEpoch, Timeout, "new epoch");
        Assert.Contains("prt_1: before and after", watcher.Read(w => w.Model.AllText()), StringComparison.Ordinal);

        fake.Emit(Delta("prt_2", "next"));
        await watcher.WaitUntilAsync(w => w.Model.AllText().Contains("prt_2: next", StringComparison.Ordinal), Timeout, "events in the new epoch");
        Assert.Empty(watcher.Read(w => w.Failures));
    }

    [Fact]
    public async Task Readiness_follows_the_upstream_stream()
    {
        var (fake, gateway) = await StartAsync(("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.050"),
            ("Gateway:Streaming:ReconnectMaxDelay", "00:00:00.100"));
        await using var __ = gateway;
        using var http = new HttpClient { BaseAddress = gateway.BaseUrl };
        await WaitAsync(() => http.GetAsync("readyz").Result.StatusCode == HttpStatusCode.OK, "ready");
        var body = JsonDocument.Parse(await http.GetStringAsync("readyz")).RootElement;
        Assert.True(body.GetProperty("checks").GetProperty("upstreams").GetProperty("data").GetProperty("local").GetProperty("connected").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz")).StatusCode);

        await fake.DisposeAsync();
        await WaitAsync(() => http.GetAsync("readyz").Result.StatusCode == HttpStatusCode.ServiceUnavailable, "not ready");
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz")).StatusCode);
    }
}

public class ShutdownTests
{
    [Fact]
    public async Task A_stopping_gateway_closes_hub_connections_refuses_new_ones_and_stops_quickly()
    {
        await using var fake = await FakeOpencode.StartAsync();
        fake.AddSession("ses_fake1");
        var gateway = await GatewayHost.StartAsync(fake.BaseUrl);
        var connection = await OpencodeGateway.TestClient.HubConnection.ConnectAsync(gateway.HubUrl, GatewayHost.AsAdmin());
        await connection.InvokeAsync("Join", [new { sessionId = "ses_fake1" }]);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var stopping = gateway.App.StopAsync();
        Assert.True(await Task.WhenAny(connection.Closed, Task.Delay(5000)) == connection.Closed, "the hub connection was not closed");
        if (!stopping.IsCompleted)
        {
            using var http = new HttpClient { BaseAddress = gateway.BaseUrl };
            try
            {
                var response = await http.GetAsync("hubs/session");
                Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
            }
            catch (HttpRequestException)
            {
                // already stopped listening: refused is as good
            }
        }

        await stopping;
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"stopping took {watch.Elapsed}");
        await gateway.DisposeAsync();
    }
}
