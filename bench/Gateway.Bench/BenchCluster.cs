using System.Diagnostics;
using System.Globalization;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Bench;

/// <summary>
/// The project's <c>deploy/cluster/cluster.sh</c> driven from the load generator (through the tests'
/// <see cref="ClusterScript"/>): the real topology (Redis with AOF, PostgreSQL, three gateway nodes, nginx; the script's
/// opencode runs too, unused) in its own state dir and ports, its stderr in a log file; plus what the benchmark reads
/// of it (which node nginx chose, nginx's CPU, when every node agrees on the lease holder).
/// </summary>
internal sealed class BenchCluster(string script, string stateDir, string log, IReadOnlyDictionary<string, string> startEnv)
{
    private readonly ClusterScript _script = new(script, stateDir, log);

    public int NodeCount => _script.NodeCount;
    public Uri FrontHubUrl => _script.FrontHubUrl;
    public int RedisPort => int.Parse(_script.Env("REDIS_PORT"), CultureInfo.InvariantCulture);

    /// <summary>The nodes' token signing key.</summary>
    public string SigningKey => _script.Env("SIGNING_KEY");

    public Uri NodeHubUrl(int node) => _script.NodeHubUrl(node);

    /// <summary>
    /// "node-N" for an address nginx names (<c>127.0.0.1:PORT</c>; after a failed try, a list whose last one answered),
    /// else the address itself ("?" for none).
    /// </summary>
    public string NodeName(string? address)
    {
        address = address?.Split(',')[^1].Trim();
        for (var node = 1; node <= NodeCount; node++)
        {
            if (address == $"127.0.0.1:{_script.Env($"NODE_{node}_PORT")}")
            {
                return $"node-{node}";
            }
        }

        return address ?? "?";
    }

    /// <summary>The pid of a running node, null when it is down.</summary>
    public int? NodePid(int node) => _script.NodePid(node);
    public int? RedisPid => _script.Pid("REDIS_PID");

    /// <summary>CPU seconds of nginx: its master and its workers (the master's children, which do the proxying).</summary>
    public double NginxCpuSeconds()
    {
        var master = _script.Pid("NGINX_PID") ?? throw new InvalidOperationException("nginx is not running");
        var children = File.ReadAllText($"/proc/{master}/task/{master}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return Proc.CpuSeconds(master) + children.Sum(c => Proc.CpuSeconds(int.Parse(c, CultureInfo.InvariantCulture)));
    }

    /// <summary>Starts from nothing: whatever an earlier run left in the state dir is stopped and deleted first.</summary>
    public Task StartAsync() => _script.StartAsync(startEnv);

    /// <summary>Stops every process (logs and data stay in the state dir until the next start).</summary>
    public Task StopAsync() => _script.StopAsync();

    /// <summary>SIGKILL of node <paramref name="node"/>; returns once the process is gone.</summary>
    public Task KillNodeAsync(int node) => _script.KillNodeAsync(node);

    public Task StartNodeAsync(int node) => _script.StartNodeAsync(node);

    /// <summary>
    /// Waits until nginx sends requests to every running node: it leaves a node it failed to reach out of rotation for
    /// fail_timeout (5 s), so a node started again gets its share of new connections only after that (measured: without
    /// this wait, the next 1,000 clients went 500 / 1 / 499). False when that did not happen within the timeout.
    /// </summary>
    public async Task<bool> WaitInRotationAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var running = Enumerable.Range(1, NodeCount).Where(n => NodePid(n) is not null).Select(n => $"node-{n}").ToHashSet();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            var served = new HashSet<string>();
            for (var i = 0; i < 2 * running.Count; i++)
            {
                using var response = await http.GetAsync(new Uri(_script.FrontUrl, "healthz"));
                if (response.Headers.TryGetValues("X-Gateway-Upstream", out var upstream))
                {
                    served.Add(NodeName(upstream.First()));
                }
            }

            if (running.IsSubsetOf(served))
            {
                return true;
            }

            await Task.Delay(250);
        }

        return false;
    }

    /// <summary>What node <paramref name="node"/>'s <c>GET /api/upstreams</c> says of the upstream's lease; null when it does not answer.</summary>
    public Task<LeaseView?> LeaseAsync(int node) => _script.LeaseAsync(node);

    /// <summary>Waits until every running node says the upstream's stream is read and they agree on one holder; returns it.</summary>
    public async Task<LeaseView> WaitReadyAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var views = new List<LeaseView?>();
            for (var node = 1; node <= NodeCount; node++)
            {
                if (NodePid(node) is not null)
                {
                    views.Add(await LeaseAsync(node));
                }
            }

            if (views.All(v => v is { Ready: true, Holder: > 0 }) && views.Select(v => v!.Holder).Distinct().Count() == 1)
            {
                return views[0]!;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"cluster not ready within {timeout.TotalSeconds} s: {string.Join(", ", views)} (see {stateDir})");
            }

            await Task.Delay(100);
        }
    }
}

/// <summary>Redis' own counters (<c>INFO stats commandstats cpu</c>, through <c>redis-cli</c>): bytes, commands, CPU.</summary>
internal sealed record RedisStats(long InputBytes, long OutputBytes, IReadOnlyDictionary<string, long> Calls, double CpuSeconds)
{
    /// <summary>The INFO calls this bench makes itself are left out of <see cref="Calls"/> (their few KB of bytes are not).</summary>
    public static async Task<RedisStats> ReadAsync(int port)
    {
        var start = new ProcessStartInfo("redis-cli", ["-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "INFO", "stats", "commandstats", "cpu"])
        {
            RedirectStandardOutput = true, UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var text = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon > 0)
            {
                fields[line[..colon]] = line[(colon + 1)..].Trim();
            }
        }

        if (!fields.ContainsKey("total_net_input_bytes"))
        {
            throw new InvalidOperationException($"redis-cli INFO on port {port} answered: {text}");
        }

        // cmdstat_xadd:calls=12,usec=…,…
        var calls = fields.Where(f => f.Key.StartsWith("cmdstat_", StringComparison.Ordinal) && f.Key != "cmdstat_info")
            .ToDictionary(f => f.Key["cmdstat_".Length..], f => long.Parse(f.Value.Split(',')[0]["calls=".Length..], CultureInfo.InvariantCulture));
        double D(string key) => double.Parse(fields[key], CultureInfo.InvariantCulture);
        return new RedisStats(long.Parse(fields["total_net_input_bytes"], CultureInfo.InvariantCulture),
            long.Parse(fields["total_net_output_bytes"], CultureInfo.InvariantCulture), calls,
            D("used_cpu_sys") + D("used_cpu_user"));
    }

    /// <summary>What happened between <paramref name="before"/> and this.</summary>
    public RedisStats Minus(RedisStats before) => new(InputBytes - before.InputBytes, OutputBytes - before.OutputBytes,
        Calls.Select(c => (c.Key, N: c.Value - before.Calls.GetValueOrDefault(c.Key))).Where(c => c.N > 0).ToDictionary(c => c.Key, c => c.N),
        CpuSeconds - before.CpuSeconds);

    public long Commands => Calls.Values.Sum();
}
