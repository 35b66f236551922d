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
        var gwPort = a.Int("gateway-port", 5496);
        var upPort = a.Int("fake-port", 5499);
        var logDir = a.Get("log-dir", ".");
        var measureSeconds = a.Double("step-seconds", 4);
        var warmSeconds = a.Double("warm-seconds", 1.5);
        var configs = a.Get("configs", "1x100,1x1000,100x10,1000x1").Split(',')
            .Select(c => c.Split('x')).Select(p => (S: int.Parse(p[0], CultureInfo.InvariantCulture), W: int.Parse(p[1], CultureInfo.InvariantCulture))).ToArray();
        var levels = a.Get("levels", "5000,10000,20000,40000,60000,80000,100000,120000,150000,200000")
            .Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var extra = a.Get("gateway-args", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var lowRate = a.Double("low-rate", 50);

        await using var fake = await FakeUpstream.StartAsync(upPort);
        var results = new List<object>();
        foreach (var (S, W) in configs)
        {
            Console.Error.WriteLine($"[B] {S} sessions x {W} watchers");
            await using var gw = await GatewayProcess.StartAsync(dll, gwPort, fake.BaseUrl, Path.Combine(logDir, $"gateway-B-{S}x{W}.log"), extra);
            var sessions = Enumerable.Range(0, S).Select(i => $"ses_bench{S}x{W}n{i:D5}").ToArray();
            var hist = new Histogram();
            long delivered = 0;
            var conns = await ConnectAsync(gw.HubUrl, S * W, i => sessions[i % S], (conn, _) =>
            {
                conn.Connection.On<BenchEvent>(nameof(ISessionClient.SessionEvent), evt =>
                {
                    if (evt.Delta is { } d && long.TryParse(d.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var sentUs))
                    {
                        hist.Add(FakeUpstream.NowMicros - sentUs);
                        Interlocked.Increment(ref delivered);
                    }
                });
            });
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
                    ["gatewayCpuPercent"] = Math.Round((cpu1 - cpu0) / el * 100, 1),
                    ["loadGenCpuPercent"] = Math.Round((self1 - self0) / el * 100, 1),
                    ["gatewayRssMB"] = Math.Round(rssMax / 1048576.0, 1),
                    // from the gateway's /metrics: what one delivered event costs it
                    ["gatewayCpuMicrosPerDelivered"] = Math.Round(PerDelivered("dotnet_process_cpu_time_seconds_total") * 1e6, 2),
                    ["gatewayAllocBytesPerDelivered"] = Math.Round(PerDelivered("dotnet_gc_heap_total_allocated_bytes_total"), 1),
                    ["gatewayWorkItemsPerDelivered"] = Math.Round(PerDelivered("dotnet_thread_pool_work_item_count_total"), 2),
                    ["closedConnections"] = closed,
                };
                step["ok"] = (double)step["p99Ms"] <= 50 && (double)step["deliveredPerSec"] >= 0.95 * deliveredTarget && closed == 0;
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
            foreach (var level in levels)
            {
                var step = await MeasureAsync(level, measureSeconds);
                steps.Add(step);
                if (!(bool)step["ok"]) break;
                best = Math.Max(best, (double)step["deliveredPerSec"]);
            }

            fake.SetRate([], 0);
            results.Add(new Dictionary<string, object?>
            {
                ["sessions"] = S, ["watchersPerSession"] = W, ["connections"] = S * W,
                ["gatewayRssIdleMB"] = Math.Round(rssIdle / 1048576.0, 1),
                ["bestDeliveredPerSecWithP99Under50ms"] = best,
                ["lowRate"] = lowRateStep, ["steps"] = steps,
            });
            await DisposeAllAsync(conns);
        }

        return new Dictionary<string, object> { ["configs"] = results };
    }

    public static async Task<object> RunIdleAsync(Args a)
    {
        var dll = a.Get("gateway-dll");
        var gwPort = a.Int("gateway-port", 5497);
        var upPort = a.Int("fake-port", 5498);
        var logDir = a.Get("log-dir", ".");
        var counts = a.Ints("connections", "1000,5000,10000");
        var sessionCount = a.Int("sessions", 100);
        await using var fake = await FakeUpstream.StartAsync(upPort);
        await using var gw = await GatewayProcess.StartAsync(dll, gwPort, fake.BaseUrl, Path.Combine(logDir, "gateway-idle.log"), []);
        var sessions = Enumerable.Range(0, sessionCount).Select(i => $"ses_idle{i:D5}").ToArray();
        // Warm the gateway's code paths (JIT, pools) with a few joins before the baseline.
        var warm = await ConnectAsync(gw.HubUrl, 20, i => sessions[i % sessionCount], null);
        await DisposeAllAsync(warm);
        await Task.Delay(1000);
        var heap0 = HeapProbe.ManagedHeapAfterFullGc(gw.Pid);
        await Task.Delay(500);
        var rss0 = gw.Rss;
        Console.Error.WriteLine($"[idle] baseline rss={rss0 / 1048576.0:F1} MB heap={heap0 / 1048576.0:F1} MB");
        var all = new List<GatewayHubClient>();
        var points = new List<object>();
        foreach (var n in counts)
        {
            var self0 = Proc.SelfCpuSeconds();
            var sw = Stopwatch.StartNew();
            all.AddRange(await ConnectAsync(gw.HubUrl, n - all.Count, i => sessions[(all.Count + i) % sessionCount], null));
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
        var byType = HeapProbe.LiveBytesByType(gw.Pid).Take(25).Select(t => new Dictionary<string, object>
        {
            ["type"] = t.Type, ["bytesPerConnection"] = Math.Round((double)t.Bytes / all.Count, 1),
            ["objectsPerConnection"] = Math.Round((double)t.Count / all.Count, 2),
        }).ToList();
        foreach (var t in byType) Console.Error.WriteLine($"[idle]   {t["bytesPerConnection"],8} B {t["objectsPerConnection"],6}x {t["type"]}");
        await DisposeAllAsync(all);
        return new Dictionary<string, object>
        {
            ["baselineRssMB"] = Math.Round(rss0 / 1048576.0, 1), ["baselineHeapMB"] = Math.Round(heap0 / 1048576.0, 1),
            ["definition"] = $"connected and joined to one of {sessionCount} sessions, no events flowing",
            ["points"] = points, ["heapByTypeAtLargest"] = byType,
        };
    }

    /// <summary>
    /// Opens <paramref name="n"/> connections of the official client (50 at a time), each joining the session
    /// <paramref name="sessionOf"/> gives. Their WebSockets count the bytes they receive.
    /// </summary>
    public static async Task<List<GatewayHubClient>> ConnectAsync(Uri hub, int n, Func<int, string> sessionOf,
        Action<GatewayHubClient, int>? setup)
    {
        var result = new GatewayHubClient[n];
        var next = -1;
        var options = new GatewayHubClientOptions
        {
            ApiKey = GatewayProcess.ApiKey, RecordEvents = false, ObserveWebSocket = true, HandshakeTimeout = TimeSpan.FromSeconds(60),
        };
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                var conn = await GatewayHubClient.ConnectAsync(hub, options);
                setup?.Invoke(conn, i);
                await conn.JoinAsync(new JoinRequest(sessionOf(i)));
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
}

/// <summary>What the load generator reads of a <c>SessionEvent</c>; the JSON protocol skips the other members.</summary>
internal sealed record BenchEvent(string Type, string? Field, string? Delta, BenchStatus? Status);

internal sealed record BenchStatus(string Type);
