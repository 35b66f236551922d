using OpencodeGateway.Testing;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace OpencodeGateway.Bench;

/// <summary>
/// The cluster scenarios (issue 10's targets), side by side with the single node in one run, all on the bench's fake
/// upstream (<see cref="FakeUpstream"/>: deltas carrying their emit time, its own REST call and stream counters):
/// <list type="number">
/// <item>delivery latency at one load on one gateway process (no Redis) and on the cluster of
/// <c>deploy/cluster/cluster.sh</c> (Redis with AOF, PostgreSQL, three nodes), watchers spread evenly over the nodes
/// and connected to them directly, split into those on the stream holder's node and those reached through Redis;</item>
/// <item>Redis' bytes and commands per upstream and per delivered event over the same cluster windows (<c>INFO</c>),
/// with Redis' idle rate (leases, checks) measured too;</item>
/// <item>takeover: SIGKILL of the lease holder while events stream, time until another node holds the lease
/// (<c>GET /api/upstreams</c>) and until the watchers on the surviving nodes receive the next event, repeated;</item>
/// <item>mass reconnect: many clients behind nginx, a node SIGKILLed mid-stream; time until every client of that node
/// is back on another node and live again, the REST calls this cost the upstream, and the latency of the clients that
/// stayed, before and during the storm.</item>
/// </list>
/// They run in the order 1 and 2, 4, 3. Arguments (defaults): <c>--gateway-dll</c>, <c>--cluster-sh</c>,
/// <c>--state-dir</c>, <c>--port-base</c> (cluster.sh's CLUSTER_PORT_BASE), <c>--gateway-port</c> (5496, the single
/// node), <c>--fake-port</c> (5498), <c>--log-dir</c>, <c>--gateway-args</c>; 1: <c>--sessions</c> (10),
/// <c>--watchers</c> per session (30), <c>--rates</c> per session (20,50), <c>--warm-seconds</c> (3),
/// <c>--jit-warm-seconds</c> (20),
/// <c>--step-seconds</c> (10), <c>--redis-idle-seconds</c> (5); 4: <c>--reconnect-clients</c> (1000),
/// <c>--reconnect-sessions</c> (20), <c>--reconnect-rate</c> per session (10), <c>--reconnect-kill</c> (other,holder),
/// <c>--reconnect-settle-seconds</c> (8),
/// <c>--reconnect-baseline-seconds</c> (5), <c>--reconnect-timeout</c> (60); 3: <c>--takeovers</c> (3),
/// <c>--takeover-sessions</c> (5), <c>--takeover-watchers</c> per session (6), <c>--takeover-rate</c> (20);
/// <c>--restart-killed</c> (true: a killed node is started again before the next kill).
/// </summary>
internal static class ClusterScenario
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(90);

    public static async Task<object> RunAsync(Args a)
    {
        var dll = a.Get("gateway-dll");
        var logDir = a.Get("log-dir", ".");
        var gwPort = a.Int("gateway-port", 5496);
        var upPort = a.Int("fake-port", 5498);
        var extra = a.Get("gateway-args", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var shape = new LatencyShape(a.Int("sessions", 10), a.Int("watchers", 30),
            a.Get("rates", "20,50").Split(',').Select(r => double.Parse(r, CultureInfo.InvariantCulture)).ToArray(),
            a.Double("warm-seconds", 3), a.Double("step-seconds", 10), a.Double("redis-idle-seconds", 5), a.Double("jit-warm-seconds", 20));

        // The mass reconnect's clients all live here: with the default minimum of 8 threads, the stayers' p95 during the
        // storm measured 295 ms, with 64 36–90 ms (the pool injects threads slowly while 334 clients reconnect at once).
        ThreadPool.GetMinThreads(out _, out var io);
        ThreadPool.SetMinThreads(64, io);
        await using var fake = await FakeUpstream.StartAsync(upPort);
        var result = new Dictionary<string, object?>
        {
            ["shape"] = new Dictionary<string, object>
            {
                ["sessions"] = shape.Sessions, ["watchersPerSession"] = shape.Watchers, ["connections"] = shape.Sessions * shape.Watchers,
                ["ratesPerSession"] = shape.Rates, ["stepSeconds"] = shape.StepSeconds,
                ["clients"] = "official SignalR .NET client, JSON, WebSockets without negotiate, ?events=full",
            },
        };

        Console.Error.WriteLine("[cluster] 1a: single node");
        List<Dictionary<string, object?>> single;
        await using (var gw = await GatewayProcess.StartAsync(dll, gwPort, fake.BaseUrl, Path.Combine(logDir, "gateway-cluster-single.log"), extra))
        {
            single = (await MeasureLatencyAsync(fake, shape, [(gw.HubUrl, 0)], [("gateway", () => gw.CpuSeconds)], cluster: null)).Steps;
        }

        // Every node gets the single node's settings: the same upstream, log level, API key and extra arguments.
        var keyHash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(GatewayProcess.ApiKey)));
        var nodeArgs = string.Join(' ', new[]
        {
            $"--Gateway:Upstreams:0:BaseUrl={fake.BaseUrl}", "--Logging:LogLevel:Default=Warning",
            "--Gateway:Auth:ApiKeys:1:Name=bench", $"--Gateway:Auth:ApiKeys:1:KeyHash={keyHash}", "--Gateway:Auth:ApiKeys:1:Admin=true",
        }.Concat(extra));
        var env = new Dictionary<string, string>
        {
            ["GATEWAY_NODE_ARGS"] = nodeArgs, ["CLUSTER_GATEWAY_DLL"] = dll,
            // the runtime settings GatewayProcess gives the single node
            ["DOTNET_gcServer"] = Environment.GetEnvironmentVariable("BENCH_GATEWAY_GCSERVER") ?? "1",
        };
        foreach (var setting in (Environment.GetEnvironmentVariable("BENCH_GATEWAY_ENV") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            env[setting[..setting.IndexOf('=')]] = setting[(setting.IndexOf('=') + 1)..];
        }

        if (a.Get("port-base", "") is { Length: > 0 } portBase)
        {
            env["CLUSTER_PORT_BASE"] = portBase;
        }

        var cluster = new BenchCluster(a.Get("cluster-sh"), a.Get("state-dir"), Path.Combine(logDir, "cluster-sh.log"), env);
        try
        {
            Console.Error.WriteLine("[cluster] starting deploy/cluster/cluster.sh");
            await cluster.StartAsync();
            var lease = await cluster.WaitReadyAsync(ReadyTimeout);
            Console.Error.WriteLine($"[cluster] ready; node-{lease.Holder} holds the stream (token {lease.FencingToken})");
            result["nodes"] = cluster.NodeCount;

            Console.Error.WriteLine("[cluster] 1b, 2: cluster latency and Redis cost");
            var nodes = Enumerable.Range(1, cluster.NodeCount).Select(n => (cluster.NodeHubUrl(n), n)).ToList();
            var (clustered, redisIdle) = await MeasureLatencyAsync(fake, shape, nodes, Processes(cluster, Running(cluster)), cluster);
            result["latency"] = single.Zip(clustered, (s, c) => new Dictionary<string, object?>
            {
                ["ratePerSession"] = s["ratePerSession"], ["single"] = s, ["cluster"] = c,
                ["p99RatioViaRedis"] = Ratio(((Dictionary<string, object?>)c["viaRedis"]!)["p99Ms"], s["p99Ms"]),
                ["p99RatioAllClusterWatchers"] = Ratio(c["p99Ms"], s["p99Ms"]),
            }).ToList();
            result["redisIdle"] = redisIdle;

            // A killed node is started again before the next kill, unless --restart-killed=false (the smoke: the next
            // phase runs on the nodes left, at least two).
            var restartKilled = bool.Parse(a.Get("restart-killed", "true"));
            var reconnects = new List<object>();
            foreach (var kill in a.Get("reconnect-kill", "other,holder").Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                await RestoreAsync(cluster, restartKilled);
                reconnects.Add(await MassReconnectAsync(fake, cluster, kill, a.Int("reconnect-clients", 1000), a.Int("reconnect-sessions", 20),
                    a.Double("reconnect-rate", 10), a.Double("reconnect-settle-seconds", 8), a.Double("reconnect-baseline-seconds", 5),
                    a.Double("reconnect-timeout", 60)));
            }

            result["reconnect"] = reconnects;
            result["takeover"] = await TakeoversAsync(fake, cluster, a.Int("takeovers", 3), a.Int("takeover-sessions", 5),
                a.Int("takeover-watchers", 6), a.Double("takeover-rate", 20), restartKilled);
        }
        finally
        {
            fake.SetRate([], 0);
            await cluster.StopAsync();
        }

        result["upstreamStreamsOpenedInAll"] = fake.Streams;
        return result;
    }

    private sealed record LatencyShape(int Sessions, int Watchers, double[] Rates, double WarmSeconds, double StepSeconds, double RedisIdleSeconds,
        double JitWarmSeconds);

    /// <summary>
    /// S × W followers, each session's watchers spread evenly over <paramref name="hubs"/>; at each rate: warm up, then
    /// one measured window. On the cluster, each window also reads Redis' counters and every process' CPU; after the
    /// last, Redis' idle rate with the same watchers and no events.
    /// </summary>
    private static async Task<(List<Dictionary<string, object?>> Steps, Dictionary<string, object?>? RedisIdle)> MeasureLatencyAsync(
        FakeUpstream fake, LatencyShape shape, List<(Uri Hub, int Node)> hubs, List<(string Name, Func<double> CpuSeconds)> processes, BenchCluster? cluster)
    {
        var sessions = Enumerable.Range(0, shape.Sessions).Select(i => $"ses_latency{i:D4}").ToArray();
        var followers = await MeasuredWatcher.StartManyAsync(shape.Sessions * shape.Watchers, i =>
        {
            var (hub, node) = hubs[i / shape.Sessions % hubs.Count];
            return (hub, sessions[i % shape.Sessions], node);
        }, reconnect: false);
        var steps = new List<Dictionary<string, object?>>();
        var redisSteps = new List<(RedisStats Used, double Seconds)>();
        try
        {
            // Freshly started processes compile (tiered JIT) through their first tens of seconds: measured without this,
            // the cluster's first step had the holder spending half its CPU samples in the JIT and p99 46 ms, two steps
            // later 4 ms. Both arms first run the highest rate unmeasured.
            fake.SetRate(sessions, shape.Rates.Max() * shape.Sessions);
            await Task.Delay(TimeSpan.FromSeconds(shape.JitWarmSeconds));
            foreach (var rate in shape.Rates)
            {
                fake.SetRate(sessions, rate * shape.Sessions);
                await Task.Delay(TimeSpan.FromSeconds(shape.WarmSeconds));
                var holder = cluster is null ? 0 : (await cluster.WaitReadyAsync(ReadyTimeout)).Holder;
                Histogram all = new(), onHolder = new(), viaRedis = new();
                foreach (var f in followers)
                {
                    f.MeasureInto(cluster is null ? [all] : f.Node == holder ? [all, onHolder] : [all, viaRedis]);
                }

                var cpu0 = processes.Select(p => p.CpuSeconds()).ToArray();
                var self0 = Proc.SelfCpuSeconds();
                var e0 = fake.Emitted;
                var redis0 = cluster is null ? null : await RedisStats.ReadAsync(cluster.RedisPort);
                var clock = Stopwatch.StartNew();
                await Task.Delay(TimeSpan.FromSeconds(shape.StepSeconds));
                var seconds = clock.Elapsed.TotalSeconds;
                var redis = cluster is null ? null : (await RedisStats.ReadAsync(cluster.RedisPort)).Minus(redis0!);
                var upstream = fake.Emitted - e0;
                var cpu = processes.Select((p, i) => (p.Name, Percent: Math.Round((p.CpuSeconds() - cpu0[i]) / seconds * 100, 1))).ToList();
                var self = Math.Round((Proc.SelfCpuSeconds() - self0) / seconds * 100, 1);
                foreach (var f in followers)
                {
                    f.MeasureInto([]);
                }

                if (all.Count == 0)
                {
                    throw new InvalidOperationException($"no event reached any watcher in {seconds:0.0} s at {rate}/s per session (upstream emitted {upstream})");
                }

                var step = new Dictionary<string, object?>
                {
                    ["ratePerSession"] = rate,
                    ["upstreamEventsPerSec"] = Math.Round(upstream / seconds, 1),
                    ["deliveredPerSec"] = Math.Round(all.Count / seconds, 1),
                    ["offeredDeliveredPerSec"] = rate * shape.Sessions * shape.Watchers,
                    ["upstreamEvents"] = upstream, ["deliveredEvents"] = all.Count, ["seconds"] = Math.Round(seconds, 2),
                };
                foreach (var (k, v) in Latency(all))
                {
                    step[k] = v;
                }

                if (cluster is not null)
                {
                    step["holderNode"] = holder;
                    step["onHolderNode"] = Latency(onHolder);
                    step["viaRedis"] = Latency(viaRedis);
                    step["redis"] = RedisPer(redis!, seconds, upstream, all.Count);
                    redisSteps.Add((redis!, seconds));
                }

                step["cpuPercent"] = cpu.ToDictionary(c => c.Name, c => c.Percent);
                step["loadGenCpuPercent"] = self;
                step["sanity"] = Sanity(followers);
                Console.Error.WriteLine($"[cluster]   {(cluster is null ? "single" : "cluster")} {rate}/s per session: delivered/s={step["deliveredPerSec"]} " +
                    $"p50={step["p50Ms"]} p99={step["p99Ms"]}" + (cluster is null ? "" :
                        $" viaRedis p99={((Dictionary<string, object?>)step["viaRedis"]!)["p99Ms"]} redis cmds/upstream ev={((Dictionary<string, object?>)step["redis"]!)["commandsPerUpstreamEvent"]}") +
                    $" cpu {string.Join(' ', cpu.Select(c => $"{c.Name}={c.Percent}%"))} loadgen={self}%");
                steps.Add(step);
            }

            fake.SetRate([], 0);
            if (cluster is null)
            {
                return (steps, null);
            }

            // Redis' own background with the same watchers and no events: lease renewals, history checks, backplane.
            await Task.Delay(1000);
            var idle0 = await RedisStats.ReadAsync(cluster.RedisPort);
            var idleClock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(shape.RedisIdleSeconds));
            var idle = (await RedisStats.ReadAsync(cluster.RedisPort)).Minus(idle0);
            var idleSeconds = idleClock.Elapsed.TotalSeconds;
            for (var i = 0; i < steps.Count; i++)
            {
                // the same windows less what Redis does anyway in that time
                var (used, seconds) = redisSteps[i];
                var net = new RedisStats((long)(used.InputBytes - idle.InputBytes * seconds / idleSeconds), (long)(used.OutputBytes - idle.OutputBytes * seconds / idleSeconds),
                    used.Calls.ToDictionary(c => c.Key, c => (long)(c.Value - idle.Calls.GetValueOrDefault(c.Key) * seconds / idleSeconds)), used.CpuSeconds - idle.CpuSeconds * seconds / idleSeconds);
                ((Dictionary<string, object?>)steps[i]["redis"]!)["lessIdle"] = RedisPer(net, seconds, (long)steps[i]["upstreamEvents"]!, (long)steps[i]["deliveredEvents"]!);
            }

            return (steps, new Dictionary<string, object?>
            {
                ["seconds"] = Math.Round(idleSeconds, 1), ["watchers"] = followers.Count,
                ["inputBytesPerSec"] = Math.Round(idle.InputBytes / idleSeconds), ["outputBytesPerSec"] = Math.Round(idle.OutputBytes / idleSeconds),
                ["commandsPerSec"] = Math.Round(idle.Commands / idleSeconds, 1),
                ["callsPerSec"] = idle.Calls.OrderByDescending(c => c.Value).ToDictionary(c => c.Key, c => Math.Round(c.Value / idleSeconds, 2)),
            });
        }
        finally
        {
            fake.SetRate([], 0);
            await MeasuredWatcher.DisposeAllAsync(followers);
        }
    }

    /// <summary>Starts the nodes that are down (all of them with <paramref name="restartKilled"/>, else only while fewer than two run).</summary>
    private static async Task RestoreAsync(BenchCluster cluster, bool restartKilled)
    {
        for (var node = 1; node <= cluster.NodeCount; node++)
        {
            var running = Enumerable.Range(1, cluster.NodeCount).Count(n => cluster.NodePid(n) is not null);
            if (cluster.NodePid(node) is null && (restartKilled || running < 2))
            {
                await cluster.StartNodeAsync(node);
            }
        }
    }

    /// <summary>CPU seconds of the given nodes and of Redis, by name.</summary>
    private static List<(string Name, Func<double> CpuSeconds)> Processes(BenchCluster cluster, IEnumerable<int> nodes)
    {
        var list = new List<(string Name, Func<double> CpuSeconds)>();
        foreach (var node in nodes)
        {
            var pid = cluster.NodePid(node)!.Value;
            list.Add(($"node-{node}", () => Proc.CpuSeconds(pid)));
        }

        var redis = cluster.RedisPid!.Value;
        list.Add(("redis", () => Proc.CpuSeconds(redis)));
        return list;
    }

    private static Histogram Fill(IEnumerable<double> micros)
    {
        var histogram = new Histogram();
        foreach (var m in micros)
        {
            histogram.Add(m);
        }

        return histogram;
    }

    /// <summary>How many of <paramref name="followers"/> each node serves (behind nginx, from its response header).</summary>
    private static Dictionary<string, int> Spread(BenchCluster cluster, IEnumerable<MeasuredWatcher> followers) =>
        followers.GroupBy(f => cluster.NodeName(f.Read(() => f.ServedBy))).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>The nodes running now.</summary>
    private static List<int> Running(BenchCluster cluster) => [.. Enumerable.Range(1, cluster.NodeCount).Where(n => cluster.NodePid(n) is not null)];

    /// <summary>
    /// SIGKILLs <paramref name="node"/>; returns when it died as its own clients saw it (the first of them to lose its
    /// connection), or, without clients there, when <c>cluster.sh kill-node</c> returned (the process is gone by then);
    /// and how long after the call that was.
    /// </summary>
    private static async Task<(long DiedUs, double AfterCallSeconds)> KillAsync(BenchCluster cluster, int node, IEnumerable<MeasuredWatcher> itsClients)
    {
        var t0 = FakeUpstream.NowMicros;
        await cluster.KillNodeAsync(node);
        var returned = FakeUpstream.NowMicros;
        await Task.Delay(300); // their drops arrive within milliseconds of the death
        var drops = itsClients.Select(f => f.Read(() => f.DisconnectedUs)).Where(d => d >= t0).Select(d => d!.Value).ToList();
        var died = drops.Count > 0 ? Math.Min(drops.Min(), returned) : returned;
        return (died, Seconds(died - t0));
    }

    /// <summary>
    /// Kills the lease holder <paramref name="rounds"/> times while every session streams, watchers spread over the
    /// running nodes (connected to them directly): time from the holder's death until a surviving node reports it holds
    /// the lease, and until each watcher on a surviving node receives an event emitted after the death (only the new
    /// holder can have read it). The killed node comes back before the next round (see <see cref="RestoreAsync"/>).
    /// </summary>
    private static async Task<object> TakeoversAsync(FakeUpstream fake, BenchCluster cluster, int rounds, int sessionCount, int watchers, double rate,
        bool restartKilled)
    {
        var sessions = Enumerable.Range(0, sessionCount).Select(i => $"ses_takeover{i:D4}").ToArray();
        var results = new List<object>();
        for (var round = 1; round <= rounds; round++)
        {
            await RestoreAsync(cluster, restartKilled);
            var nodes = Running(cluster);
            var followers = await MeasuredWatcher.StartManyAsync(sessionCount * watchers, i =>
            {
                var node = nodes[i / sessionCount % nodes.Count];
                return (cluster.NodeHubUrl(node), sessions[i % sessionCount], node);
            }, reconnect: false);
            try
            {
                fake.SetRate(sessions, rate * sessionCount);
                await Task.Delay(2000);
                var before = await cluster.WaitReadyAsync(ReadyTimeout);
                var survivors = followers.Where(f => f.Node != before.Holder).ToList();
                var snapshots0 = survivors.Sum(f => f.Read(() => f.PushedSnapshots));
                var streams0 = fake.Streams;
                fake.ResetMaxOpenStreams();
                var clock = Stopwatch.StartNew();
                var (died, killSeconds) = await KillAsync(cluster, before.Holder, followers.Where(f => f.Node == before.Holder));
                foreach (var f in survivors)
                {
                    f.Mark(died);
                }

                var takeover = WaitForHolderAsync(cluster, before.Holder);
                while (survivors.Any(f => f.Read(() => f.FirstEventAfterMarkUs) is null) && clock.Elapsed < TimeSpan.FromSeconds(40))
                {
                    await Task.Delay(50);
                }

                var (leaseAt, after) = await takeover;
                var firsts = survivors.Select(f => f.Read(() => f.FirstEventAfterMarkUs)).Where(t => t is not null).Select(t => Seconds(t!.Value - died)).ToList();
                var snapshotTimes = survivors.Select(f => f.Read(() => f.SnapshotAfterMarkUs)).Where(t => t is not null).Select(t => Seconds(t!.Value - died)).ToList();
                var row = new Dictionary<string, object?>
                {
                    ["round"] = round, ["nodes"] = nodes.Count, ["killedNode"] = before.Holder, ["fencingTokenBefore"] = before.FencingToken,
                    ["newHolder"] = after?.Holder, ["fencingTokenAfter"] = after?.FencingToken,
                    ["killCommandToDeathSeconds"] = Math.Round(killSeconds, 2),
                    ["leaseTakenSeconds"] = leaseAt is null ? null : Math.Round(Seconds(leaseAt.Value - died), 2),
                    ["survivingWatchers"] = survivors.Count, ["survivorsWithNextEvent"] = firsts.Count,
                    ["nextEventSeconds"] = Summary(firsts), ["pushedSnapshotSeconds"] = Summary(snapshotTimes),
                    ["pushedSnapshots"] = survivors.Sum(f => f.Read(() => f.PushedSnapshots)) - snapshots0,
                    ["upstreamStreamsOpened"] = fake.Streams - streams0, ["maxUpstreamStreamsAtOnce"] = fake.MaxOpenStreams,
                    ["sanity"] = Sanity(survivors),
                };
                Console.Error.WriteLine("[cluster]   takeover " + string.Join(' ', row.Where(kv => kv.Key != "sanity").Select(kv => $"{kv.Key}={Show(kv.Value)}")));
                results.Add(row);
            }
            finally
            {
                fake.SetRate([], 0);
                await MeasuredWatcher.DisposeAllAsync(followers);
            }
        }

        return new Dictionary<string, object?>
        {
            ["sessions"] = sessionCount, ["watchersPerSession"] = watchers, ["ratePerSession"] = rate,
            ["definition"] = "death = the first of the holder's own watchers losing its connection after `cluster.sh kill-node` (SIGKILL); " +
                "lease = a surviving node's GET /api/upstreams says heldHere; next event = a surviving watcher applies a delta emitted after the death",
            ["rounds"] = results,
        };
    }

    /// <summary>
    /// <paramref name="clients"/> clients behind nginx (round robin, automatic reconnect), spread over the sessions; one
    /// node (the lease holder, or another) SIGKILLed mid-stream. The clients that lose their connection are the killed
    /// node's: they reconnect through nginx to the others and rejoin with <c>since</c>. The stayers' latency is taken
    /// over a window before the kill and one from the kill until every moved client is live again (at least as long).
    /// </summary>
    private static async Task<object> MassReconnectAsync(FakeUpstream fake, BenchCluster cluster, string kill, int clients, int sessionCount,
        double rate, double settleSeconds, double baselineSeconds, double timeoutSeconds)
    {
        if (kill is not ("holder" or "other"))
        {
            throw new ArgumentException($"--reconnect-kill: '{kill}' is not holder or other");
        }

        var before = await cluster.WaitReadyAsync(ReadyTimeout);
        if (!await cluster.WaitInRotationAsync(TimeSpan.FromSeconds(20)))
        {
            Console.Error.WriteLine("[cluster]   nginx did not route to every running node within 20 s: clients may be spread unevenly");
        }

        var nodes = Running(cluster);
        Console.Error.WriteLine($"[cluster] 4: mass reconnect, {clients} clients over {sessionCount} sessions on {nodes.Count} nodes, killing the {kill} node");
        var sessions = Enumerable.Range(0, sessionCount).Select(i => $"ses_reconnect{kill}{i:D4}").ToArray();
        var connectClock = Stopwatch.StartNew();
        var followers = await MeasuredWatcher.StartManyAsync(clients, i => (cluster.FrontHubUrl, sessions[i % sessionCount], 0), reconnect: true);
        var connectSeconds = connectClock.Elapsed.TotalSeconds;
        try
        {
            fake.SetRate(sessions, rate * sessionCount);
            // The first seconds after the sessions start streaming to every client at once are a transient of their own
            // (measured: latency up to ~1 s for about 3 s, then p95 ~3 ms): the baseline starts after it.
            await Task.Delay(TimeSpan.FromSeconds(settleSeconds));
            foreach (var f in followers)
            {
                f.BeginRecording();
            }

            await Task.Delay(TimeSpan.FromSeconds(baselineSeconds));
            var target = kill == "holder" ? before.Holder : nodes.First(n => n != before.Holder);
            var spreadBefore = Spread(cluster, followers);
            var processes = Processes(cluster, nodes.Where(n => n != target))
                .Append((Name: "nginx", CpuSeconds: cluster.NginxCpuSeconds)).Append((Name: "load generator", CpuSeconds: Proc.SelfCpuSeconds)).ToList();
            var rest0 = fake.RestCalls;
            fake.ResetMaxOpenStreams();
            var cpu0 = processes.Select(p => p.CpuSeconds()).ToArray();
            var samplesBefore = followers.ToDictionary(f => f, f => f.EndRecording());
            foreach (var f in followers)
            {
                f.BeginRecording();
            }

            var t0 = FakeUpstream.NowMicros;

            var (died, killSeconds) = await KillAsync(cluster, target, followers);
            var takeover = kill == "holder" ? WaitForHolderAsync(cluster, target) : Task.FromResult<(long?, LeaseView?)>((null, null));
            var moved = followers.Where(f => f.Read(() => f.DisconnectedUs) >= t0).ToList();
            var clock = Stopwatch.StartNew();
            // The load generator's own state during the storm: a starved thread pool here would delay the clients, not the nodes.
            var (maxPendingWorkItems, maxThreads) = (0L, 0);
            while ((moved.Any(f => f.Read(() => f.LiveAgainUs) is null) && clock.Elapsed.TotalSeconds < timeoutSeconds)
                   || clock.Elapsed.TotalSeconds < baselineSeconds)
            {
                await Task.Delay(100);
                (maxPendingWorkItems, maxThreads) = (Math.Max(maxPendingWorkItems, ThreadPool.PendingWorkItemCount), Math.Max(maxThreads, ThreadPool.ThreadCount));
                // a client whose drop arrived late is the killed node's too
                moved = followers.Where(f => f.Read(() => f.DisconnectedUs) >= t0).ToList();
            }

            var stormSeconds = Seconds(FakeUpstream.NowMicros - t0);
            var cpu = processes.Select((p, i) => (p.Name, Percent: Math.Round((p.CpuSeconds() - cpu0[i]) / stormSeconds * 100, 1))).ToList();
            var samples = followers.ToDictionary(f => f, f => f.EndRecording());
            var rest = Diff(fake.RestCalls, rest0);
            var (leaseAt, _) = await takeover;
            double?[] Times(Func<MeasuredWatcher, long?> pick) => [.. moved.Select(f => f.Read(() => pick(f)) is { } t ? Seconds(t - died) : (double?)null)];
            var live = Times(f => f.LiveAgainUs);
            var stayers = followers.Except(moved).ToList();
            Histogram baseline = new(), during = new();
            foreach (var f in stayers)
            {
                samplesBefore[f].ForEach(baseline.Add);
                samples[f].ForEach(during.Add);
            }

            // Every client ends where its session ends: stop the stream and wait until each has the last event.
            fake.SetRate([], 0);
            var (atHead, convergeSeconds) = await WaitConvergedAsync(followers, TimeSpan.FromSeconds(20));
            var restAfter = Diff(fake.RestCalls, rest0);
            var row = new Dictionary<string, object?>
            {
                ["kill"] = kill, ["killedNode"] = target, ["holderBefore"] = before.Holder, ["nodes"] = nodes.Count,
                ["clients"] = clients, ["sessions"] = sessionCount, ["ratePerSession"] = rate,
                ["connectSeconds"] = Math.Round(connectSeconds, 1), ["killCommandToDeathSeconds"] = Math.Round(killSeconds, 2),
                ["clientsPerNodeBeforeKill"] = spreadBefore, ["movedClients"] = moved.Count, ["stayers"] = stayers.Count,
                ["movedClientsNowOn"] = Spread(cluster, moved),
                ["allMovedLiveAgain"] = live.All(t => t is not null), ["movedNotLiveAgain"] = live.Count(t => t is null),
                ["reconnectedSeconds"] = Summary(Times(f => f.ReconnectedUs)), ["rejoinedSeconds"] = Summary(Times(f => f.RejoinedUs)),
                ["liveAgainSeconds"] = Summary(live),
                ["rejoinsRecovered"] = moved.Count(f => f.Read(() => f.RejoinRecovered) == true),
                ["rejoinsWithSnapshot"] = moved.Count(f => f.Read(() => f.RejoinRecovered) == false),
                ["leaseTakenSeconds"] = leaseAt is null ? null : Math.Round(Seconds(leaseAt.Value - died), 2),
                ["restCallsUntilAllLive"] = rest.Values.Sum(), ["restCallsPerSessionUntilAllLive"] = Math.Round((double)rest.Values.Sum() / sessionCount, 2),
                ["restCallsPerMovedClient"] = moved.Count == 0 ? null : Math.Round((double)rest.Values.Sum() / moved.Count, 3),
                ["restCallsByRoute"] = rest, ["restCallsUntilConverged"] = restAfter.Values.Sum(),
                ["stayersLatencyBefore"] = Latency(baseline), ["stayersLatencyDuring"] = Latency(during),
                // by the node serving each stayer: a slow tail that is one node's shows here
                ["stayersLatencyBeforeByNode"] = stayers.GroupBy(f => cluster.NodeName(f.Read(() => f.ServedBy))).OrderBy(g => g.Key)
                    .ToDictionary(g => g.Key, g => Latency(Fill(g.SelectMany(f => samplesBefore[f])))),
                ["stayersLatencyDuringByNode"] = stayers.GroupBy(f => cluster.NodeName(f.Read(() => f.ServedBy))).OrderBy(g => g.Key)
                    .ToDictionary(g => g.Key, g => Latency(Fill(g.SelectMany(f => samples[f])))),
                ["cpuPercentDuring"] = cpu.ToDictionary(c => c.Name, c => c.Percent),
                ["loadGenThreadPoolDuring"] = new Dictionary<string, object> { ["maxPendingWorkItems"] = maxPendingWorkItems, ["maxThreads"] = maxThreads },
                ["windowSeconds"] = Math.Round(stormSeconds, 2),
                ["clientsAtSessionHead"] = atHead, ["convergeSeconds"] = convergeSeconds is null ? null : Math.Round(convergeSeconds.Value, 2),
                ["maxUpstreamStreamsAtOnce"] = fake.MaxOpenStreams,
                ["sanityMoved"] = Sanity(moved), ["sanityStayers"] = Sanity(stayers),
                ["gapLog"] = followers.SelectMany(f => f.Read(() => f.GapLog.ToList())).Take(10)
                    .Select(g => System.Text.RegularExpressions.Regex.Replace(g, @"127\.0\.0\.1:\d+", m => cluster.NodeName(m.Value))).ToList(),
            };
            Console.Error.WriteLine("[cluster]   reconnect " + string.Join(' ', row.Where(kv => kv.Key is not ("restCallsByRoute" or "gapLog"))
                .Select(kv => $"{kv.Key}={Show(kv.Value)}")));
            return row;
        }
        finally
        {
            fake.SetRate([], 0);
            await MeasuredWatcher.DisposeAllAsync(followers);
        }
    }

    /// <summary>When (µs) a node other than <paramref name="killed"/> reports it holds the lease, and its view; nulls after 30 s.</summary>
    private static async Task<(long? AtUs, LeaseView? View)> WaitForHolderAsync(BenchCluster cluster, int killed)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            foreach (var node in Running(cluster).Where(n => n != killed))
            {
                if (await cluster.LeaseAsync(node) is { HeldHere: true } view)
                {
                    return (FakeUpstream.NowMicros, view with { Holder = node });
                }
            }

            await Task.Delay(50);
        }

        return (null, null);
    }

    /// <summary>
    /// With the upstream quiet: waits until every follower holds its session's newest position (the highest any
    /// follower of that session holds); returns how many do, and how long it took (null: not all within the timeout).
    /// </summary>
    private static async Task<(int AtHead, double? Seconds)> WaitConvergedAsync(List<MeasuredWatcher> followers, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        await Task.Delay(500); // what the fake was writing when it stopped
        while (true)
        {
            var heads = followers.GroupBy(f => f.SessionId).ToDictionary(g => g.Key, g => g.Max(f => f.Position));
            var atHead = followers.Count(f => f.Position == heads[f.SessionId]);
            if (atHead == followers.Count)
            {
                return (atHead, clock.Elapsed.TotalSeconds);
            }

            if (clock.Elapsed > timeout)
            {
                return (atHead, null);
            }

            await Task.Delay(100);
        }
    }

    private static Dictionary<string, object?> Latency(Histogram h) => new()
    {
        ["count"] = h.Count,
        ["p50Ms"] = Nullable(h.PercentileMs(50)), ["p95Ms"] = Nullable(h.PercentileMs(95)), ["p99Ms"] = Nullable(h.PercentileMs(99)),
        ["maxMs"] = h.Count == 0 ? null : h.MaxMs,
    };

    private static double? Nullable(double v) => double.IsNaN(v) ? null : v;

    /// <summary>Redis' work over a window: per second, per upstream event, per delivered event; the busiest commands.</summary>
    private static Dictionary<string, object?> RedisPer(RedisStats r, double seconds, long upstream, long delivered)
    {
        double? Per(double v, long n) => n == 0 ? null : Math.Round(v / n, 2);
        return new Dictionary<string, object?>
        {
            ["inputBytes"] = r.InputBytes, ["outputBytes"] = r.OutputBytes, ["commands"] = r.Commands,
            ["cpuPercent"] = Math.Round(r.CpuSeconds / seconds * 100, 1),
            ["bytesPerUpstreamEvent"] = Per(r.InputBytes + r.OutputBytes, upstream), ["bytesPerDeliveredEvent"] = Per(r.InputBytes + r.OutputBytes, delivered),
            ["inputBytesPerUpstreamEvent"] = Per(r.InputBytes, upstream), ["outputBytesPerUpstreamEvent"] = Per(r.OutputBytes, upstream),
            ["commandsPerUpstreamEvent"] = Per(r.Commands, upstream), ["commandsPerDeliveredEvent"] = Per(r.Commands, delivered),
            ["callsPerUpstreamEvent"] = r.Calls.OrderByDescending(c => c.Value).ToDictionary(c => c.Key, c => Per(c.Value, upstream)),
        };
    }

    /// <summary>What a client following the rules must never need in steady state, summed: gaps, rejoins, failures, closed connections.</summary>
    private static Dictionary<string, object> Sanity(IEnumerable<MeasuredWatcher> followers)
    {
        var list = followers.ToList();
        return new Dictionary<string, object>
        {
            ["gaps"] = list.Sum(f => f.Read(() => f.Gaps)),
            ["eventsOfNewerEpochBeforeItsSnapshot"] = list.Sum(f => f.Read(() => f.EventsOfNewerEpochBeforeItsSnapshot)),
            ["duplicates"] = list.Sum(f => f.Read(() => f.Duplicates)),
            ["pushedSnapshots"] = list.Sum(f => f.Read(() => f.PushedSnapshots)),
            ["recoveries"] = list.Sum(f => f.Read(() => f.Recoveries)),
            ["snapshots"] = list.Sum(f => f.Read(() => f.Snapshots)),
            ["closed"] = list.Count(f => f.IsClosed),
            ["failures"] = list.SelectMany(f => f.Read(() => f.Failures.ToList())).Distinct().Take(5).ToList(),
        };
    }

    private static Dictionary<string, object?> Summary(IEnumerable<double?> values)
    {
        var got = values.Where(v => v is not null).Select(v => v!.Value).Order().ToList();
        double? At(double p) => got.Count == 0 ? null : Math.Round(got[Math.Min(got.Count - 1, (int)Math.Ceiling(p / 100 * got.Count) - 1)], 3);
        return new Dictionary<string, object?> { ["n"] = got.Count, ["min"] = At(0.0001), ["p50"] = At(50), ["p99"] = At(99), ["max"] = At(100) };
    }

    private static Dictionary<string, object?> Summary(IEnumerable<double> values) => Summary(values.Select(v => (double?)v));

    private static Dictionary<string, long> Diff(IReadOnlyDictionary<string, long> after, IReadOnlyDictionary<string, long> before) =>
        after.Select(kv => (kv.Key, N: kv.Value - before.GetValueOrDefault(kv.Key))).Where(kv => kv.N > 0).ToDictionary(kv => kv.Key, kv => kv.N);

    private static double? Ratio(object? a, object? b) => a is double x && b is double y && y > 0 ? Math.Round(x / y, 2) : null;

    private static double Seconds(long micros) => micros / 1e6;

    private static string Show(object? v) => v switch
    {
        null => "–",
        string text => text,
        System.Collections.IDictionary d => "{" + string.Join(',', d.Keys.Cast<object>().Select(k => $"{k}:{Show(d[k])}")) + "}",
        System.Collections.IEnumerable list => "[" + string.Join(',', list.Cast<object?>().Select(Show)) + "]",
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };
}
