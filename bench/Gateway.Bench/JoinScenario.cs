using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Bench;

/// <summary>
/// Cheap joins (issue 9): J clients, already connected, join one session of the real opencode at once while its answer
/// streams, each with a snapshot (no <c>since</c>): the REST requests that cost opencode (the gateway's HttpClient
/// requests, <c>http_client_request_duration_seconds_count</c> on its <c>/metrics</c>, read before and after; nothing else
/// calls opencode meanwhile: the prompt goes to opencode directly) and each Join call's time, in four shapes (below),
/// each on a new session. Arguments: <c>--oc-env</c>,
/// <c>--gateway-dll</c>, <c>--gateway-port</c> (5496), <c>--log-dir</c>, <c>--joins</c> (200), <c>--rounds</c> (3),
/// <c>--tokens</c> (2000) and <c>--delay</c> (10) of the streaming answer, <c>--streamed-before</c> (100: deltas the
/// first watcher has seen when the joins start), <c>--gateway-args</c>.
/// </summary>
internal static class JoinScenario
{
    private const string RestRequests = "http_client_request_duration_seconds_count";

    public static async Task<object> RunAsync(Args a)
    {
        var env = File.ReadAllLines(a.Get("oc-env")).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        var oc = new Uri(env["OC_BASE_URL"].TrimEnd('/') + "/");
        var dll = a.Get("gateway-dll");
        var gwPort = a.Int("gateway-port", 5496);
        var logDir = a.Get("log-dir", ".");
        var joins = a.Int("joins", 200);
        var tokens = a.Int("tokens", 2000);
        var delay = a.Int("delay", 10);
        var streamedBefore = a.Int("streamed-before", 100);
        var extra = a.Get("gateway-args", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        using var http = new HttpClient { BaseAddress = oc };
        var form = WireForm.OfProtocol("json");
        var rounds = new List<object>();
        for (var round = 1; round <= a.Int("rounds", 3); round++)
        {
            await using (var gw = await GatewayProcess.StartAsync(dll, gwPort, oc, Path.Combine(logDir, $"gateway-joins-{round}.log"), extra))
            {
                rounds.Add(await MeasureAsync(round, "followed", gw));
                rounds.Add(await MeasureAsync(round, "unwatched", gw));
            }

            rounds.Add(await MeasureAsync(round, "cold", null));
            rounds.Add(await MeasureAsync(round, "cold after one join", null));
        }

        // followed: the gateway has followed the session from the start (one watcher joined before the prompt), so its
        // live state is complete and a snapshot needs no REST call. unwatched: the same gateway, now warm, and a session
        // nobody watched until the joins, which are its first: the snapshot needs opencode's messages, fetched once for
        // all of them. cold: the same on a gateway process started while the answer streams (a node started again).
        // cold after one join: the same, after one client joined another (idle) session on that process: what the cold
        // process lacks is the first run of the join path, not anything per join.
        async Task<Dictionary<string, object?>> MeasureAsync(int round, string shape, GatewayProcess? warm)
        {
            var gatewayStarted = shape == "followed" ? "before" : "during";
            var created = await (await http.PostAsJsonAsync("session", new { title = $"bench joins {round} {gatewayStarted}" })).Content.ReadFromJsonAsync<JsonElement>();
            var sid = created.GetProperty("id").GetString()!;
            async Task PromptAsync() =>
                (await http.PostAsJsonAsync($"session/{sid}/prompt_async",
                    new { parts = new[] { new { type = "text", text = $"joins{round} tokens={tokens} delay={delay}" } } })).EnsureSuccessStatusCode();

            if (gatewayStarted == "during")
            {
                await PromptAsync();
                await Task.Delay(TimeSpan.FromMilliseconds(streamedBefore * delay));
            }

            var cold = warm is null ? await GatewayProcess.StartAsync(dll, gwPort, oc, Path.Combine(logDir, $"gateway-joins-{round}-cold.log"), extra) : null;
            var gw = warm ?? cold!;
            var deltas = 0;
            var rest0 = (await gw.MetricsAsync()).GetValueOrDefault(RestRequests);
            var first = gatewayStarted == "before"
                ? await ScenarioB.ConnectAsync(gw.HubUrl, 1, _ => sid,
                    (conn, _) => ScenarioB.OnTextDeltas(conn, form, _ => Interlocked.Increment(ref deltas), null), form)
                : [];
            double? firstJoinRest = gatewayStarted == "before" ? (await gw.MetricsAsync()).GetValueOrDefault(RestRequests) - rest0 : null;
            var clients = await ScenarioB.ConnectAsync(gw.HubUrl, joins, _ => sid, null, form, join: false);
            try
            {
                if (gatewayStarted == "before")
                {
                    await PromptAsync();
                }

                var wait = Stopwatch.StartNew();
                while (gatewayStarted == "before" && Volatile.Read(ref deltas) < streamedBefore)
                {
                    if (wait.Elapsed > TimeSpan.FromSeconds(60))
                    {
                        throw new TimeoutException($"the answer did not stream {streamedBefore} deltas within 60 s ({deltas})");
                    }

                    await Task.Delay(20);
                }

                double? firstJoinOfProcessMs = null;
                if (shape == "cold after one join")
                {
                    var idle = await (await http.PostAsJsonAsync("session", new { title = $"bench joins {round} first join" })).Content.ReadFromJsonAsync<JsonElement>();
                    var idleId = idle.GetProperty("id").GetString()!;
                    var one = await ScenarioB.ConnectAsync(gw.HubUrl, 1, _ => idleId, null, form, join: false);
                    var call = Stopwatch.StartNew();
                    await one[0].JoinAsync(new JoinRequest(idleId));
                    firstJoinOfProcessMs = Math.Round(call.Elapsed.TotalMilliseconds, 1);
                    await ScenarioB.DisposeAllAsync(one);
                }

                var metrics0 = await gw.MetricsAsync();
                var cpu0 = gw.CpuSeconds;
                var all = Stopwatch.StartNew();
                var results = await Task.WhenAll(clients.Select(async c =>
                {
                    var call = Stopwatch.StartNew();
                    var result = await c.JoinAsync(new JoinRequest(sid));
                    return (Ms: call.Elapsed.TotalMilliseconds, Snapshot: result.TryGetProperty("snapshot", out var s) && s.ValueKind == JsonValueKind.Object);
                }));
                var allSeconds = all.Elapsed.TotalSeconds;
                var cpu = gw.CpuSeconds - cpu0;
                var metrics1 = await gw.MetricsAsync();
                if (!metrics1.ContainsKey(RestRequests))
                {
                    throw new InvalidOperationException($"the gateway's /metrics has no {RestRequests}: cannot count its REST requests");
                }

                var ms = results.Select(r => r.Ms).Order().ToArray();
                double P(double p) => Math.Round(ms[Math.Min(ms.Length - 1, (int)Math.Ceiling(p / 100 * ms.Length) - 1)], 1);
                var row = new Dictionary<string, object?>
                {
                    ["round"] = round, ["shape"] = shape, ["joins"] = joins,
                    // before: the first watcher's own join (a snapshot of a session not streaming yet), which shows the counter counts
                    ["restRequestsFirstJoin"] = firstJoinRest,
                    // cold after one join: that one join's time, on the process's first run of the join path
                    ["firstJoinOfProcessMs"] = firstJoinOfProcessMs,
                    ["restRequests"] = metrics1[RestRequests] - metrics0.GetValueOrDefault(RestRequests),
                    ["snapshots"] = results.Count(r => r.Snapshot),
                    ["joinP50Ms"] = P(50), ["joinP99Ms"] = P(99), ["joinMaxMs"] = Math.Round(ms[^1], 1),
                    ["allJoinedSeconds"] = Math.Round(allSeconds, 3), ["gatewayCpuSeconds"] = Math.Round(cpu, 2),
                };
                Console.Error.WriteLine("[joins] " + string.Join(' ', row.Select(kv => $"{kv.Key}={kv.Value}")));
                return row;
            }
            finally
            {
                await ScenarioB.DisposeAllAsync([.. first, .. clients]);
                await http.PostAsync($"session/{sid}/abort", null);
                if (cold is not null)
                {
                    await cold.DisposeAsync();
                }
            }
        }

        return new Dictionary<string, object?> { ["rounds"] = rounds };
    }
}
