using System.Net.Http.Json;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
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

    /// <summary>A text part announced with <c>text: ""</c>, as opencode does before its deltas.</summary>
    private static string Announce(string partId) => JsonSerializer.Serialize(new
    {
        payload = new
        {
            type = "message.part.updated",
            properties = new { sessionID = Session, part = new { id = partId, messageID = "msg_1", sessionID = Session, type = "text", text = "", time = new { start = 1 } } },
        },
    });

    private static async Task<(FakeOpencode Fake, GatewayHost Gateway)> StartAsync(TimeProvider? time = null,
        params (string Key, string Value)[] settings)
    {
        var fake = await FakeOpencode.StartAsync();
        fake.AddSession(Session);
        var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = fake.BaseUrl, Time = time, Settings = settings.ToDictionary(s => s.Key, s => (string?)s.Value),
        });
        Assert.Equal(1, fake.StreamConnections);
        return (fake, gateway);
    }


    /// <summary>Whether the gateway says (<c>GET /api/upstreams</c>) that it reads the upstream's event stream.</summary>
    private static async Task<bool> StreamConnectedAsync(GatewayHost gateway)
    {
        using var http = gateway.ApiKeyClient(GatewayHost.AdminApiKey);
        return await GatewayHost.UpstreamsConnectedAsync(http);
    }

    [Fact]
    public async Task A_garbage_line_is_skipped_and_counted_and_the_stream_goes_on()
    {
        var (fake, gateway) = await StartAsync();
        await using var _ = fake;
        await using var __ = gateway;
        await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        using var malformed = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.upstream.events.malformed");

        fake.Emit("{this is not json");
        fake.EmitRaw("no-colon-field-line\n\n");
        fake.Emit(Delta("prt_1", "hello "));
        fake.Emit(Delta("prt_1", "world"));

        await watcher.WaitUntilAsync(w => w.AllText().Contains("hello world", StringComparison.Ordinal), Timeout, "deltas after garbage");
        Assert.Equal(1, malformed.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(1, fake.StreamConnections);
    }

    [Fact]
    public async Task One_upstream_stream_serves_every_watcher()
    {
        var (fake, gateway) = await StartAsync();
        await using var _ = fake;
        await using var __ = gateway;
        var watchers = new List<ObservedSession>();
        for (var i = 0; i < 5; i++)
        {
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin()));
        }

        fake.Emit(Announce("prt_1"));
        for (var i = 0; i < 20; i++)
        {
            fake.Emit(Delta("prt_1", $"t{i} "));
        }

        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => x.AllText().Contains("t19 ", StringComparison.Ordinal), Timeout, "all deltas");
            Assert.Equal(21, w.Read(x => x.EventsApplied));
            await w.DisposeAsync();
        }

        Assert.Equal(1, fake.StreamConnections);
    }

    [Fact]
    public async Task A_silent_stream_is_treated_as_stalled_and_reconnected()
    {
        // The gateway's clock is the test's: silence lasts exactly as long as the test says, on any machine.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // (the hub's silent-client check runs on this clock too: the watcher, pinging in real time, must outlast the jumps)
        var (fake, gateway) = await StartAsync(clock, ("Gateway:Streaming:StallTimeout", "00:00:30"),
            ("Gateway:Streaming:ReconnectInitialDelay", "00:00:02"), ("Gateway:Streaming:ReconnectMaxDelay", "00:00:10"),
            ("Gateway:Hub:ClientTimeoutInterval", "01:00:00"));
        await using var _ = fake;
        await using var __ = gateway;
        using var reconnects = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.upstream.reconnects");
        fake.Heartbeats = false;
        await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());

        // Silent for less than the stall timeout: the same stream still carries events (and the read restarts the wait).
        clock.Advance(TimeSpan.FromSeconds(29));
        fake.Emit(Delta("prt_1", "alive "));
        await watcher.WaitUntilAsync(w => w.AllText().Contains("alive", StringComparison.Ordinal), Timeout, "event before the stall timeout");
        Assert.True(await StreamConnectedAsync(gateway));

        // Silent for the stall timeout: the stream is given up; the reconnect waits for its backoff on the same clock.
        clock.Advance(TimeSpan.FromSeconds(30));
        await Eventually.HoldsAsync(() => !StreamConnectedAsync(gateway).Result, "stall detected", Timeout);
        // The pump marks the upstream down, then counts the reconnect: the readiness probe can answer in between.
        await Eventually.HoldsAsync(() => reconnects.GetMeasurementSnapshot().Any(m => m.MatchesTags(new KeyValuePair<string, object?>("upstream", "local"))),
            "the reconnect counted", Timeout);
        Assert.Equal(1, fake.StreamConnections);

        await Eventually.AdvanceUntilAsync(clock, TimeSpan.FromSeconds(2), () => fake.StreamConnections >= 2, "reconnect after the backoff");
        await Eventually.HoldsAsync(() => StreamConnectedAsync(gateway).Result, "connected again", Timeout);
        Assert.False(watcher.IsClosed);
    }

    [Fact]
    public async Task A_pump_stopped_while_its_sink_works_has_closed_its_connection_when_it_returns()
    {
        var (fake, gateway) = await StartAsync();
        await using var _ = fake;
        await using var __ = gateway;
        // A second pump of the same upstream, beside the gateway's own, whose sink holds the first event until the pump
        // stops: it stops inside the sink, not in a read of the stream (a busy holder stopping or losing its lease).
        var sink = new HoldingSink();
        var upstream = gateway.Get<UpstreamRegistry>().Get("local");
        var pump = new UpstreamEventPump(upstream, gateway.Get<IOptions<StreamingOptions>>().Value, sink, new UpstreamStreamState(),
            gateway.Get<IHttpClientFactory>(), gateway.Get<GatewayMetrics>(), TimeProvider.System, NullLogger.Instance);
        using var stopping = new CancellationTokenSource();
        var running = pump.RunAsync("test-lease", stopping.Token);
        await Eventually.HoldsAsync(() => fake.Subscribers == 2, "the second pump reading", Timeout);
        fake.Emit(Delta("prt_1", "held "));
        await sink.Holding.WaitAsync(Timeout);

        await stopping.CancelAsync();
        await running;
        // The lease is released right after: its connection must be gone by then, not drained in the background (up
        // to SocketsHttpHandler's MaxResponseDrainTime, 2 s) while the next holder opens its own.
        await Eventually.HoldsAsync(() => fake.Subscribers == 1, "the stopped pump's connection closed", TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task A_sink_that_fails_on_a_sequencing_worker_makes_the_pump_give_the_connection_up_and_reconnect()
    {
        var (fake, gateway) = await StartAsync();
        await using var _ = fake;
        await using var __ = gateway;
        var sink = new FailingSink();
        var upstream = gateway.Get<UpstreamRegistry>().Get("local");
        var pump = new UpstreamEventPump(upstream, new StreamingOptions { SequencingWorkers = 4 }, sink, new UpstreamStreamState(),
            gateway.Get<IHttpClientFactory>(), gateway.Get<GatewayMetrics>(), TimeProvider.System, NullLogger.Instance);
        using var stopping = new CancellationTokenSource();
        var running = pump.RunAsync("test-lease", stopping.Token);
        await Eventually.HoldsAsync(() => fake.Subscribers == 2, "the second pump reading", Timeout);
        var connections = fake.StreamConnections;

        fake.Emit(Delta("prt_1", "boom "));
        // The failure surfaces from the worker to the pump: the connection is closed (the sink hears it) and reopened.
        await Eventually.HoldsAsync(() => sink.Closed >= 1, "the sink told the stream closed", Timeout);
        await Eventually.HoldsAsync(() => fake.StreamConnections > connections && fake.Subscribers == 2, "the pump reconnected", Timeout);

        await stopping.CancelAsync();
        await running;
    }

    private sealed class FailingSink : IUpstreamEventSink
    {
        private int _closed;

        public int Closed => Volatile.Read(ref _closed);

        public ValueTask OnStreamConnectedAsync(UpstreamStream stream, CancellationToken ct) => ValueTask.CompletedTask;

        public ValueTask OnEventAsync(UpstreamStream stream, UpstreamEvent e, CancellationToken ct) =>
            throw new InvalidOperationException("a bug in the sink");

        public ValueTask OnStreamClosedAsync(string upstream, CancellationToken ct)
        {
            Interlocked.Increment(ref _closed);
            return ValueTask.CompletedTask;
        }

        public ValueTask OnUpstreamRemovedAsync(string upstream, string lease, CancellationToken ct) => ValueTask.CompletedTask;
    }

    /// <summary>Holds the first event until the pump's token is cancelled.</summary>
    private sealed class HoldingSink : IUpstreamEventSink
    {
        private readonly TaskCompletionSource _holding = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Holding => _holding.Task;

        public ValueTask OnStreamConnectedAsync(UpstreamStream stream, CancellationToken ct) => ValueTask.CompletedTask;

        public async ValueTask OnEventAsync(UpstreamStream stream, UpstreamEvent e, CancellationToken ct)
        {
            _holding.TrySetResult();
            await Task.Delay(System.Threading.Timeout.InfiniteTimeSpan, ct);
        }

        public ValueTask OnStreamClosedAsync(string upstream, CancellationToken ct) => ValueTask.CompletedTask;

        public ValueTask OnUpstreamRemovedAsync(string upstream, string lease, CancellationToken ct) => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task After_a_cut_stream_watchers_get_a_new_epoch_and_a_fresh_snapshot()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var (fake, gateway) = await StartAsync(clock, ("Gateway:Streaming:ReconnectInitialDelay", "00:00:01"),
            ("Gateway:Streaming:ReconnectMaxDelay", "00:00:05"));
        await using var _ = fake;
        await using var __ = gateway;
        await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        fake.Emit(Announce("prt_1"));
        fake.Emit(Delta("prt_1", "before "));
        await watcher.WaitUntilAsync(w => w.AllText().Contains("before", StringComparison.Ordinal), Timeout, "first delta");
        var firstEpoch = watcher.Read(w => w.View.Epoch);

        // The answer ended while the stream was cut: opencode stored the whole part.
        fake.AddSession(Session, JsonSerializer.SerializeToElement(new
        {
            info = new { id = "msg_1", sessionID = Session, role = "assistant" },
            parts = new[] { new { id = "prt_1", messageID = "msg_1", sessionID = Session, type = "text", text = "before and after", time = new { start = 1, end = 2 } } },
        }));
        fake.CutStreams();
        await Eventually.HoldsAsync(() => !StreamConnectedAsync(gateway).Result, "stream loss noticed", Timeout);
        Assert.Equal(1, fake.StreamConnections); // no reconnect before the backoff delay has passed
        await Eventually.AdvanceUntilAsync(clock, TimeSpan.FromSeconds(1), () => fake.StreamConnections >= 2, "reconnect");
        await watcher.WaitUntilAsync(w => w.View.Epoch > firstEpoch, Timeout, "new epoch");
        Assert.Contains("prt_1: before and after", watcher.Read(w => w.AllText()), StringComparison.Ordinal);

        Assert.Empty(watcher.Read(w => w.View.Part("prt_1")!.GapsOf()));
        Assert.Equal(1, watcher.Read(w => w.PushedSnapshots));

        fake.Emit(Announce("prt_2"));
        fake.Emit(Delta("prt_2", "next"));
        await watcher.WaitUntilAsync(w => w.AllText().Contains("prt_2: next", StringComparison.Ordinal), Timeout, "events in the new epoch");
        Assert.Empty(watcher.Read(w => w.Failures));
        // The new epoch began with its snapshot, not with one of its events: no rejoin was needed.
        Assert.Equal(1, watcher.Read(w => w.Snapshots));
    }

    [Fact]
    public async Task Readiness_is_this_nodes_own_and_the_upstreams_state_is_in_the_upstreams_api()
    {
        var (fake, gateway) = await StartAsync(settings: [("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.050"),
            ("Gateway:Streaming:ReconnectMaxDelay", "00:00:00.100")]);
        await using var __ = gateway;
        using var http = new HttpClient { BaseAddress = gateway.BaseUrl };
        using var admin = gateway.ApiKeyClient(GatewayHost.AdminApiKey);
        var upstream = (await admin.GetFromJsonAsync<JsonElement>("api/upstreams"))[0];
        Assert.Equal(("local", true, true), (upstream.GetProperty("id").GetString(), upstream.GetProperty("connected").GetBoolean(),
            upstream.GetProperty("heldHere").GetBoolean()));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("readyz")).StatusCode);

        // opencode gone: the node still serves (its store answers), and the upstreams API says what happened.
        await fake.DisposeAsync();
        await Eventually.HoldsAsync(() => !GatewayHost.UpstreamsConnectedAsync(admin).Result, "the stream's loss seen", Timeout);
        upstream = (await admin.GetFromJsonAsync<JsonElement>("api/upstreams"))[0];
        Assert.False(upstream.GetProperty("connected").GetBoolean());
        Assert.True(upstream.TryGetProperty("lastError", out var error) && error.ValueKind == JsonValueKind.String, upstream.ToString());
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("readyz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz")).StatusCode);

        // Only admins see the upstreams.
        using var alice = gateway.HttpClient("alice");
        Assert.Equal(HttpStatusCode.Forbidden, (await alice.GetAsync("api/upstreams")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("api/upstreams")).StatusCode);
    }
}

public class ShutdownTests
{
    [Fact]
    public async Task A_stopping_gateway_closes_hub_connections_refuses_new_ones_and_stops_quickly()
    {
        await using var fake = await FakeOpencode.StartAsync();
        fake.AddSession("ses_fake1");
        // No shutdown timeout: the stop can only complete if the gateway ends its hub connections itself (Kestrel
        // would otherwise wait for the client, which never leaves, for ever). "Quickly" = without waiting for clients.
        var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = fake.BaseUrl,
            Configure = b => b.Services.Configure<HostOptions>(o => o.ShutdownTimeout = System.Threading.Timeout.InfiniteTimeSpan),
        });
        var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.AsAdmin());
        await connection.JoinAsync(new JoinRequest("ses_fake1"));

        var stopping = gateway.App.StopAsync();
        Assert.True(await Task.WhenAny(connection.Closed, Task.Delay(Guard)) == connection.Closed, "the hub connection was not closed");
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

        Assert.True(await Task.WhenAny(stopping, Task.Delay(Guard)) == stopping, "stopping waited for the client");
        await stopping;
        await connection.DisposeAsync();
        await gateway.DisposeAsync();
    }

    /// <summary>Only against hanging: no outcome of this test depends on how fast the machine is.</summary>
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(2);
}
