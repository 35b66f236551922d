using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Bench;

/// <summary>Fan-out capacity of one gateway node over a controlled fake upstream, and memory per idle connection.</summary>
internal static class ScenarioB
{
    public static async Task<object> RunFanoutAsync(Args a)
    {
        var dll = a.Get("gateway-dll");
        var bareDll = a.Get("bare-dll", "");
        // An earlier build of the gateway, run beside this one on the same ladder (a before/after in one run).
        var beforeDll = a.Get("before-dll", "");
        var gwPort = a.Int("gateway-port", 5496);
        var upPort = a.Int("fake-port", 5499);
        var logDir = a.Get("log-dir", ".");
        var measureSeconds = a.Double("step-seconds", 4);
        var warmSeconds = a.Double("warm-seconds", 1.5);
        var configs = a.Get("configs", "1x100,1x1000,100x10,1000x1").Split(',')
            .Select(c => c.Split('x')).Select(p => (S: int.Parse(p[0], CultureInfo.InvariantCulture), W: int.Parse(p[1], CultureInfo.InvariantCulture))).ToArray();
        var levels = a.Get("levels", "5000,10000,20000,40000,60000,80000,100000,120000,150000,200000")
            .Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        // Past the last level, rates keep growing by a quarter while the server keeps up, up to this.
        var maxLevel = a.Double("max-level", 1_000_000);
        var extra = a.Get("gateway-args", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var lowRate = a.Double("low-rate", 50);
        var protocols = a.Get("protocols", "json,msgpack").Split(',').Select(WireForm.OfProtocol).ToArray();
        // The bare broadcaster runs each configuration too, with the same connections, rates and load generator.
        var servers = new[] { beforeDll.Length > 0 ? "before" : null, "gateway", bareDll.Length > 0 ? "bare" : null }.OfType<string>().ToArray();

        await using var fake = await FakeUpstream.StartAsync(upPort);
        var results = new List<Dictionary<string, object?>>();
        var ratios = new List<object>();
        foreach (var (S, W) in configs)
        {
            foreach (var form in protocols)
            {
                var byServer = new Dictionary<string, Dictionary<string, object?>>();
                foreach (var server in servers)
                {
                    Console.Error.WriteLine($"[B] {S} sessions x {W} watchers, {server}, {form.Name}");
                    var log = Path.Combine(logDir, $"{server}-B-{S}x{W}-{form.Name}.log");
                    await using var gw = server == "bare"
                        ? await GatewayProcess.StartBareAsync(bareDll, gwPort, fake.BaseUrl, log)
                        : await GatewayProcess.StartAsync(server == "before" ? beforeDll : dll, gwPort, fake.BaseUrl, log, extra);
                    var run = await RunLadderAsync(gw, server, form, S, W);
                    byServer[server] = run;
                    results.Add(run);
                }

                if (byServer.TryGetValue("bare", out var bare))
                {
                    foreach (var (server, run) in byServer.Where(r => r.Key != "bare"))
                    {
                        ratios.Add(Ratios(server, run, bare, S, W, form));
                    }
                }
            }
        }

        return new Dictionary<string, object> { ["configs"] = results, ["ratiosToBare"] = ratios };

        async Task<Dictionary<string, object?>> RunLadderAsync(GatewayProcess gw, string server, WireForm form, int S, int W)
        {
            var bare = server == "bare";
            var sessions = Enumerable.Range(0, S).Select(i => $"ses_bench{S}x{W}n{i:D5}").ToArray();
            var hist = new Histogram();
            long delivered = 0;
            void OnDelta(string delta)
            {
                if (long.TryParse(delta.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var sentUs))
                {
                    hist.Add(FakeUpstream.NowMicros - sentUs);
                    Interlocked.Increment(ref delivered);
                }
            }

            var conns = await ConnectAsync(gw.HubUrl, S * W, i => sessions[i % S], (conn, _) => OnTextDeltas(conn, form, OnDelta, null),
                form, bare);
            var rssIdle = gw.Rss;

            var steps = new List<object>();
            async Task<Dictionary<string, object>> MeasureAsync(double deliveredTarget, double seconds)
            {
                var upstreamRate = deliveredTarget / W;
                fake.SetRate(sessions, upstreamRate);
                await Task.Delay(TimeSpan.FromSeconds(warmSeconds));
                hist.Reset();
                var d0 = Interlocked.Read(ref delivered);
                var m0 = await gw.MetricsAsync();
                var bytes0 = conns.Sum(c => c.BytesReceived);
                var cpu0 = gw.CpuSeconds; var self0 = Proc.SelfCpuSeconds(); var e0 = fake.Emitted;
                var sw = Stopwatch.StartNew();
                long rssMax = 0;
                while (sw.Elapsed.TotalSeconds < seconds)
                {
                    await Task.Delay(250);
                    rssMax = Math.Max(rssMax, gw.Rss);
                }

                var el = sw.Elapsed.TotalSeconds;
                var d1 = Interlocked.Read(ref delivered);
                var bytes1 = conns.Sum(c => c.BytesReceived);
                var cpu1 = gw.CpuSeconds; var self1 = Proc.SelfCpuSeconds(); var e1 = fake.Emitted;
                var m1 = await gw.MetricsAsync();
                double PerDelivered(string metric) => d1 == d0 ? double.NaN : (m1[metric] - m0[metric]) / (d1 - d0);
                var closed = conns.Count(c => c.IsClosed);
                var step = new Dictionary<string, object>
                {
                    ["offeredDeliveredPerSec"] = deliveredTarget,
                    ["upstreamEventsPerSec"] = Math.Round((e1 - e0) / el, 1),
                    ["deliveredPerSec"] = Math.Round((d1 - d0) / el, 1),
                    ["p50Ms"] = hist.PercentileMs(50), ["p99Ms"] = hist.PercentileMs(99), ["maxMs"] = hist.MaxMs,
                    ["serverCpuPercent"] = Math.Round((cpu1 - cpu0) / el * 100, 1),
                    ["loadGenCpuPercent"] = Math.Round((self1 - self0) / el * 100, 1),
                    ["serverRssMB"] = Math.Round(rssMax / 1048576.0, 1),
                    // WebSocket payload bytes received per delivered event (the same for the gateway and the bare broadcaster)
                    ["bytesPerDelivered"] = d1 == d0 ? double.NaN : Math.Round((double)(bytes1 - bytes0) / (d1 - d0), 1),
                    // from the server's /metrics: what one delivered event costs it
                    ["serverCpuMicrosPerDelivered"] = Math.Round(PerDelivered("dotnet_process_cpu_time_seconds_total") * 1e6, 2),
                    ["serverAllocBytesPerDelivered"] = Math.Round(PerDelivered("dotnet_gc_heap_total_allocated_bytes_total"), 1),
                    ["serverWorkItemsPerDelivered"] = Math.Round(PerDelivered("dotnet_thread_pool_work_item_count_total"), 2),
                    ["closedConnections"] = closed,
                };
                // One session at a low rate sends few events per step: the delivered count then jumps by a whole event
                // per watcher at the window's edges. What the upstream sent in the window, less one event per session
                // still on its way, delivered to every watcher counts as keeping up too.
                var keptUp = (double)step["deliveredPerSec"] >= 0.95 * deliveredTarget || d1 - d0 >= (e1 - e0 - S) * W;
                step["ok"] = (double)step["p99Ms"] <= 50 && keptUp && closed == 0;
                Console.Error.WriteLine("[B]   " + string.Join(' ', step.Select(kv => $"{kv.Key}={kv.Value}")));
                return step;
            }

            // Warm up (JIT tiering, pools); not recorded.
            await MeasureAsync(Math.Min(levels[0], 5000), 2);
            Dictionary<string, object>? lowRateStep = null;
            if (S == 1)
            {
                // One session's answer at a real model's pace: 'lowRate' tokens/s to W watchers.
                lowRateStep = await MeasureAsync(lowRate * W, Math.Max(measureSeconds, 5));
                fake.SetRate([], 0);
                await Task.Delay(500);
            }

            double best = 0;
            var ladder = new List<double>(levels);
            for (var i = 0; i < ladder.Count; i++)
            {
                var step = await MeasureAsync(ladder[i], measureSeconds);
                steps.Add(step);
                if (!(bool)step["ok"]) break;
                best = Math.Max(best, (double)step["deliveredPerSec"]);
                if (i == ladder.Count - 1 && ladder[i] * 1.25 <= maxLevel)
                {
                    ladder.Add(Math.Round(ladder[i] * 1.25 / 1000) * 1000);
                }
            }

            fake.SetRate([], 0);
            await DisposeAllAsync(conns);
            return new Dictionary<string, object?>
            {
                ["server"] = server, ["protocol"] = form.Name,
                ["sessions"] = S, ["watchersPerSession"] = W, ["connections"] = S * W,
                ["serverRssIdleMB"] = Math.Round(rssIdle / 1048576.0, 1),
                ["bestDeliveredPerSecWithP99Under50ms"] = best,
                ["lowRate"] = lowRateStep, ["steps"] = steps,
            };
        }
    }

    /// <summary>
    /// The gateway against the bare broadcaster for one configuration: capacity (best delivered/s at p99 ≤ 50 ms) and
    /// CPU per delivered event, at the highest offered rate both kept up with (and at the low rate, for 1 session).
    /// </summary>
    private static Dictionary<string, object?> Ratios(string server, Dictionary<string, object?> gateway, Dictionary<string, object?> bare, int s, int w, WireForm form)
    {
        static List<Dictionary<string, object>> Ok(Dictionary<string, object?> run) =>
            [.. ((List<object>)run["steps"]!).Cast<Dictionary<string, object>>().Where(step => (bool)step["ok"])];
        var gatewayOk = Ok(gateway);
        var bareOk = Ok(bare);
        var common = gatewayOk.Select(g => (Gateway: g, Bare: bareOk.FirstOrDefault(b => (double)b["offeredDeliveredPerSec"] == (double)g["offeredDeliveredPerSec"])))
            .Where(p => p.Bare is not null).LastOrDefault();
        double? CpuRatio(Dictionary<string, object>? g, Dictionary<string, object>? b) =>
            g is null || b is null ? null : Math.Round((double)g["serverCpuMicrosPerDelivered"] / (double)b["serverCpuMicrosPerDelivered"], 2);
        var bareBest = (double)bare["bestDeliveredPerSecWithP99Under50ms"]!;
        var result = new Dictionary<string, object?>
        {
            ["server"] = server, ["sessions"] = s, ["watchersPerSession"] = w, ["protocol"] = form.Name,
            ["gatewayBest"] = gateway["bestDeliveredPerSecWithP99Under50ms"], ["bareBest"] = bareBest,
            ["capacityRatio"] = bareBest > 0 ? Math.Round((double)gateway["bestDeliveredPerSecWithP99Under50ms"]! / bareBest, 2) : null,
            // the bare broadcaster still kept up at the last rate tried: the ratio is an upper bound
            ["bareLimitReached"] = ((List<object>)bare["steps"]!).Cast<Dictionary<string, object>>().Any(step => !(bool)step["ok"]),
            ["cpuRatioAtOfferedPerSec"] = common.Gateway?["offeredDeliveredPerSec"],
            ["cpuPerDeliveredRatio"] = CpuRatio(common.Gateway, common.Bare),
            ["cpuPerDeliveredRatioAtLowRate"] = CpuRatio((Dictionary<string, object>?)gateway["lowRate"], (Dictionary<string, object>?)bare["lowRate"]),
        };
        Console.Error.WriteLine("[B] ratios: " + string.Join(' ', result.Select(kv => $"{kv.Key}={kv.Value}")));
        return result;
    }

    public static async Task<object> RunIdleAsync(Args a)
    {
        var dll = a.Get("gateway-dll");
        var gwPort = a.Int("gateway-port", 5497);
        var upPort = a.Int("fake-port", 5498);
        var logDir = a.Get("log-dir", ".");
        var counts = a.Ints("connections", "1000,5000,10000");
        var sessionCount = a.Int("sessions", 100);
        // true (default): one WebSocket per client, no negotiate; false: the official client's default, which also keeps
        // its negotiate request's HTTP keep-alive connection open (a second Kestrel connection per client).
        var skipNegotiation = bool.Parse(a.Get("skip-negotiation", "true"));
        await using var fake = await FakeUpstream.StartAsync(upPort);
        var extra = a.Get("gateway-args", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        await using var gw = await GatewayProcess.StartAsync(dll, gwPort, fake.BaseUrl, Path.Combine(logDir, "gateway-idle.log"), extra);
        var sessions = Enumerable.Range(0, sessionCount).Select(i => $"ses_idle{i:D5}").ToArray();
        // Warm the gateway's code paths (JIT, pools) with a few joins before the baseline.
        var warm = await ConnectAsync(gw.HubUrl, 20, i => sessions[i % sessionCount], null, skipNegotiation: skipNegotiation);
        await DisposeAllAsync(warm);
        await Task.Delay(1000);
        var heap0 = HeapProbe.ManagedHeapAfterFullGc(gw.Pid);
        // Live objects only (the heap snapshot's sum): the heap size above also counts free space between them.
        var live0 = HeapProbe.LiveBytesByType(gw.Pid).Sum(t => t.Bytes);
        await Task.Delay(500);
        var rss0 = gw.Rss;
        Console.Error.WriteLine($"[idle] baseline rss={rss0 / 1048576.0:F1} MB heap={heap0 / 1048576.0:F1} MB");
        var all = new List<GatewayHubClient>();
        var points = new List<object>();
        foreach (var n in counts)
        {
            var self0 = Proc.SelfCpuSeconds();
            var sw = Stopwatch.StartNew();
            all.AddRange(await ConnectAsync(gw.HubUrl, n - all.Count, i => sessions[(all.Count + i) % sessionCount], null,
                skipNegotiation: skipNegotiation));
            var connectSeconds = sw.Elapsed.TotalSeconds;
            await Task.Delay(2000);
            var heap = HeapProbe.ManagedHeapAfterFullGc(gw.Pid);
            await Task.Delay(1000);
            var rss = gw.Rss;
            var point = new Dictionary<string, object>
            {
                ["connections"] = n, ["open"] = all.Count(c => !c.IsClosed),
                ["gatewayRssMB"] = Math.Round(rss / 1048576.0, 1), ["gatewayHeapMB"] = Math.Round(heap / 1048576.0, 1),
                ["rssPerConnectionKB"] = Math.Round((rss - rss0) / 1024.0 / n, 2),
                ["heapPerConnectionKB"] = Math.Round((heap - heap0) / 1024.0 / n, 2),
                ["connectSeconds"] = Math.Round(connectSeconds, 1),
                ["loadGenCpuSeconds"] = Math.Round(Proc.SelfCpuSeconds() - self0, 2),
                ["loadGenRssMB"] = Math.Round(Proc.RssBytes(Environment.ProcessId) / 1048576.0, 1),
            };
            Console.Error.WriteLine("[idle] " + string.Join(' ', point.Select(kv => $"{kv.Key}={kv.Value}")));
            points.Add(point);
        }

        // What the heap per connection is made of, at the largest count (where the baseline matters least).
        var types = HeapProbe.LiveBytesByType(gw.Pid);
        var liveBytesPerConnection = Math.Round((types.Sum(t => t.Bytes) - live0) / 1024.0 / all.Count, 2);
        Console.Error.WriteLine($"[idle] live objects: {liveBytesPerConnection} KB per connection at {all.Count}");
        var byType = types.Take(40).Select(t => new Dictionary<string, object>
        {
            ["type"] = t.Type, ["bytesPerConnection"] = Math.Round((double)t.Bytes / all.Count, 1),
            ["objectsPerConnection"] = Math.Round((double)t.Count / all.Count, 2),
        }).ToList();
        foreach (var t in byType) Console.Error.WriteLine($"[idle]   {t["bytesPerConnection"],8} B {t["objectsPerConnection"],6}x {t["type"]}");
        await DisposeAllAsync(all);
        return new Dictionary<string, object>
        {
            ["baselineRssMB"] = Math.Round(rss0 / 1048576.0, 1), ["baselineHeapMB"] = Math.Round(heap0 / 1048576.0, 1),
            ["definition"] = $"connected and joined to one of {sessionCount} sessions, no events flowing"
                + (skipNegotiation ? " (WebSockets without negotiate: one TCP connection each)" : " (after a negotiate request whose keep-alive connection stays open: two TCP connections each)"),
            ["points"] = points, ["liveObjectsPerConnectionKBAtLargest"] = liveBytesPerConnection, ["heapByTypeAtLargest"] = byType,
        };
    }

    /// <summary>
    /// Opens <paramref name="n"/> connections of the official client (50 at a time) in <paramref name="form"/> (default:
    /// the gateway's default, compact JSON), each joining the session <paramref name="sessionOf"/> gives; to the bare
    /// broadcaster (<paramref name="bare"/>) each names its session in the URL instead (WebSockets, no negotiate). With
    /// <paramref name="skipNegotiation"/> they connect as clients behind a load balancer must (WebSockets, no negotiate
    /// request, whose keep-alive connection the official client would otherwise hold open too). Their WebSockets count the
    /// bytes they receive.
    /// </summary>
    public static async Task<List<GatewayHubClient>> ConnectAsync(Uri hub, int n, Func<int, string> sessionOf,
        Action<GatewayHubClient, int>? setup, WireForm? form = null, bool bare = false, bool skipNegotiation = false, bool join = true)
    {
        var result = new GatewayHubClient[n];
        var next = -1;
        var options = new GatewayHubClientOptions
        {
            ApiKey = GatewayProcess.ApiKey, RecordEvents = false, ObserveWebSocket = true, HandshakeTimeout = TimeSpan.FromSeconds(60),
            Events = form?.Events, MessagePack = form?.MessagePack ?? false, SkipNegotiation = bare || skipNegotiation,
        };
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                var conn = await GatewayHubClient.ConnectAsync(bare ? new Uri(hub + "?session=" + sessionOf(i)) : hub, options);
                setup?.Invoke(conn, i);
                if (!bare && join)
                {
                    await conn.JoinAsync(new JoinRequest(sessionOf(i)));
                }

                result[i] = conn;
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(50, Math.Max(1, n))).Select(_ => Worker()));
        return [.. result];
    }

    public static async Task DisposeAllAsync(IEnumerable<GatewayHubClient> conns)
    {
        var list = conns.ToList();
        for (var i = 0; i < list.Count; i += 200)
        {
            await Task.WhenAll(list.Skip(i).Take(200).Select(c => c.DisposeAsync().AsTask()));
        }
    }

    /// <summary>
    /// Calls <paramref name="onTextDelta"/> with the text of every text delta a connection receives, in either form
    /// (a compact delta, or a full <c>part.delta</c> of field <c>text</c>), and <paramref name="onIdle"/> when the
    /// session turns idle. The bench's answers stream text only, so every compact delta is text.
    /// </summary>
    public static void OnTextDeltas(GatewayHubClient conn, WireForm form, Action<string> onTextDelta, Action? onIdle)
    {
        conn.Connection.On<int, long, int, int, string>(nameof(ISessionClient.D), (_, _, _, _, delta) => onTextDelta(delta));
        void OnEvent(string type, string? field, string? delta, string? status)
        {
            if (type == SessionEventTypes.PartDelta && field == "text" && delta is not null)
            {
                onTextDelta(delta);
            }
            else if (type == SessionEventTypes.Status && status == "idle")
            {
                onIdle?.Invoke();
            }
        }

        if (form.MessagePack)
        {
            // (the contract's own type: MessagePack maps are read by name through the contract's formatter)
            conn.Connection.On<SessionEvent>(nameof(ISessionClient.SessionEvent), e =>
                OnEvent(e.Type, e.Field, e.Delta, e.Status is { } s && s.TryGetProperty("type", out var t) ? t.GetString() : null));
        }
        else
        {
            conn.Connection.On<BenchEvent>(nameof(ISessionClient.SessionEvent), e => OnEvent(e.Type, e.Field, e.Delta, e.Status?.Type));
        }
    }
}

/// <summary>How the load generator's connections receive events: the gateway's event form and its hub protocol.</summary>
internal sealed record WireForm(string Name, string? Events, bool MessagePack)
{
    /// <summary>The gateway's default form (compact) in <c>json</c> or <c>msgpack</c>.</summary>
    public static WireForm OfProtocol(string protocol) => protocol switch
    {
        "json" => new WireForm("json", null, false),
        "msgpack" => new WireForm("msgpack", null, true),
        _ => throw new ArgumentException($"--protocols: '{protocol}' is not json or msgpack"),
    };
}

/// <summary>What the load generator reads of a JSON <c>SessionEvent</c>; the JSON protocol skips the other members.</summary>
internal sealed record BenchEvent(string Type, string? Field, string? Delta, BenchStatus? Status);

internal sealed record BenchStatus(string Type);
