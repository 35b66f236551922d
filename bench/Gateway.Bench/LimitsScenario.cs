using System.Diagnostics;
using System.Globalization;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Bench;

/// <summary>
/// What the per-user limits cost (issue 18): per hub connection (negotiate, WebSocket, handshake and close: the
/// connection slot is checked, taken and given back) and per hub <c>Prompt</c> call (busy sessions read, the prompt
/// counted, the session noted), on the gateway before the limits (<c>--before-dll</c>) and with them
/// (<c>--gateway-dll</c>), one user whose limits are set never to refuse. Single node (counts in memory) and, with
/// <c>--cluster-sh</c>, three nodes of <c>cluster.sh</c> (counts in Redis; the client talks to node 1), in front of the
/// <see cref="FakeUpstream"/> (it accepts prompts and answers nothing). Sequential calls, alternating before/after each
/// round. Arguments: <c>--connections</c> (300), <c>--calls</c> (2000), <c>--rounds</c> (3), <c>--gateway-port</c>
/// (5496), <c>--fake-port</c> (5497), <c>--state-dir</c>, <c>--port-base</c>, <c>--log-dir</c>.
/// </summary>
internal static class LimitsScenario
{
    private const string SigningKey = "bench-signing-key-0123456789-0123456789-0123456789";

    // Never refused, always checked: the user is not an admin.
    private static readonly string[] Generous =
    [
        $"--Gateway:Auth:Jwt:SigningKey={SigningKey}", "--Gateway:Limits:ConnectionsPerUser=100000",
        "--Gateway:Limits:PromptsPerMinute=1000000", "--Gateway:Limits:ConnectionsPerNode=1000000",
    ];

    public static async Task<object> RunAsync(Args a)
    {
        var dlls = new[] { ("before", a.Get("before-dll")), ("after", a.Get("gateway-dll")) };
        var logDir = a.Get("log-dir", ".");
        var connections = a.Int("connections", 300);
        var calls = a.Int("calls", 2000);
        var rounds = a.Int("rounds", 3);
        await using var fake = await FakeUpstream.StartAsync(a.Int("fake-port", 5497));
        var single = new List<Dictionary<string, object?>>();
        for (var round = 1; round <= rounds; round++)
        {
            foreach (var (name, dll) in dlls)
            {
                Console.Error.WriteLine($"[limits] single node, {name}, round {round}");
                await using var gw = await GatewayProcess.StartAsync(dll, a.Int("gateway-port", 5496), fake.BaseUrl,
                    Path.Combine(logDir, $"gateway-limits-{name}-{round}.log"), Generous);
                var measured = await MeasureAsync(gw.HubUrl, SigningKey, connections, calls, redisPort: null);
                measured["gateway"] = name;
                measured["round"] = round;
                single.Add(measured);
            }
        }

        var result = new Dictionary<string, object?>
        {
            ["setup"] = new { connections, calls, rounds, user = "one non-admin user, limits set never to refuse", upstream = "FakeUpstream" },
            ["single"] = single,
        };
        if (a.Get("cluster-sh", "") is { Length: > 0 } script)
        {
            var cluster = new List<Dictionary<string, object?>>();
            foreach (var (name, dll) in dlls)
            {
                var env = new Dictionary<string, string>
                {
                    ["GATEWAY_NODE_ARGS"] = string.Join(' ', new[] { $"--Gateway:Upstreams:0:BaseUrl={fake.BaseUrl}", "--Logging:LogLevel:Default=Warning" }
                        .Concat(Generous.Where(g => !g.StartsWith("--Gateway:Auth:Jwt:", StringComparison.Ordinal)))),
                    ["CLUSTER_GATEWAY_DLL"] = dll,
                    ["DOTNET_gcServer"] = Environment.GetEnvironmentVariable("BENCH_GATEWAY_GCSERVER") ?? "1",
                };
                if (a.Get("port-base", "") is { Length: > 0 } portBase)
                {
                    env["CLUSTER_PORT_BASE"] = portBase;
                }

                var nodes = new BenchCluster(script, a.Get("state-dir"), Path.Combine(logDir, $"cluster-limits-{name}.log"), env);
                try
                {
                    Console.Error.WriteLine($"[limits] cluster, {name}");
                    await nodes.StartAsync();
                    await nodes.WaitReadyAsync(TimeSpan.FromSeconds(120));
                    for (var round = 1; round <= rounds; round++)
                    {
                        var measured = await MeasureAsync(nodes.NodeHubUrl(1), nodes.SigningKey, connections, calls, nodes.RedisPort);
                        measured["gateway"] = name;
                        measured["round"] = round;
                        cluster.Add(measured);
                    }
                }
                finally
                {
                    await nodes.StopAsync();
                }
            }

            result["cluster"] = cluster;
        }

        return result;
    }

    private static async Task<Dictionary<string, object?>> MeasureAsync(Uri hub, string signingKey, int connections, int calls, int? redisPort)
    {
        var user = "bench-" + Guid.NewGuid().ToString("N")[..8];
        var options = new GatewayHubClientOptions { AccessToken = TestTokens.Mint(user, signingKey: signingKey), RecordEvents = false };

        // Warm-up: the first connections and calls pay for JIT and pools on both sides.
        await using (var warm = await GatewayHubClient.ConnectAsync(hub, options))
        {
            var sid = (await warm.CreateSessionAsync()).GetProperty("id").GetString()!;
            for (var i = 0; i < 200; i++)
            {
                await warm.PromptAsync(new PromptRequest(sid, "warm-up"));
            }
        }

        for (var i = 0; i < 50; i++)
        {
            await (await GatewayHubClient.ConnectAsync(hub, options)).DisposeAsync();
        }

        var redis0 = redisPort is { } port0 ? await RedisStats.ReadAsync(port0) : null;
        var connect = new List<double>(connections);
        for (var i = 0; i < connections; i++)
        {
            var clock = Stopwatch.StartNew();
            await (await GatewayHubClient.ConnectAsync(hub, options)).DisposeAsync();
            connect.Add(clock.Elapsed.TotalMilliseconds);
        }

        var redis1 = redisPort is { } port1 ? await RedisStats.ReadAsync(port1) : null;
        var prompt = new List<double>(calls);
        await using (var client = await GatewayHubClient.ConnectAsync(hub, options))
        {
            var sid = (await client.CreateSessionAsync()).GetProperty("id").GetString()!;
            var redis2 = redisPort is { } port2 ? await RedisStats.ReadAsync(port2) : null;
            for (var i = 0; i < calls; i++)
            {
                var clock = Stopwatch.StartNew();
                await client.PromptAsync(new PromptRequest(sid, "limits bench"));
                prompt.Add(clock.Elapsed.TotalMilliseconds);
            }

            var redis3 = redisPort is { } port3 ? await RedisStats.ReadAsync(port3) : null;
            return new Dictionary<string, object?>
            {
                ["connection"] = Summary(connect),
                ["prompt"] = Summary(prompt),
                ["redisCommandsPerConnection"] = redis1 is null ? null : Math.Round((double)redis1.Minus(redis0!).Commands / connections, 2),
                ["redisCommandsPerPrompt"] = redis3 is null ? null : Math.Round((double)redis3.Minus(redis2!).Commands / calls, 2),
            };
        }
    }

    private static Dictionary<string, double> Summary(List<double> ms)
    {
        ms.Sort();
        double At(double p) => Math.Round(ms[Math.Min(ms.Count - 1, (int)Math.Ceiling(p * ms.Count) - 1)], 3);
        return new Dictionary<string, double>
        {
            ["meanMs"] = Math.Round(ms.Average(), 3), ["p50Ms"] = At(0.50), ["p90Ms"] = At(0.90), ["p99Ms"] = At(0.99),
        };
    }
}
