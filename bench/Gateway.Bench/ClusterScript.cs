using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace OpencodeGateway.Bench;

/// <summary>
/// The project's <c>deploy/cluster/cluster.sh</c> driven from the load generator: the real topology (Redis with AOF,
/// PostgreSQL, three gateway nodes, nginx; the script's opencode runs too, unused) in its own state dir and ports.
/// Its stderr goes to a log file; what it records (<c>cluster.sh env</c>) is read after every change.
/// </summary>
internal sealed class ClusterScript(string script, string stateDir, string log, IReadOnlyDictionary<string, string> startEnv)
{
    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };
    private Stopwatch? _nodeStarted;

    public int NodeCount => int.Parse(Env("NODE_COUNT"), CultureInfo.InvariantCulture);
    public Uri FrontHubUrl => new(Env("FRONT_URL") + "/hubs/session");
    public int RedisPort => int.Parse(Env("REDIS_PORT"), CultureInfo.InvariantCulture);

    public Uri NodeUrl(int node) => new(Env($"NODE_{node}_URL") + "/");
    public Uri NodeHubUrl(int node) => new(NodeUrl(node), "hubs/session");

    /// <summary>
    /// "node-N" for an address nginx names (<c>127.0.0.1:PORT</c>; after a failed try, a list whose last one answered),
    /// else the address itself ("?" for none).
    /// </summary>
    public string NodeName(string? address)
    {
        address = address?.Split(',')[^1].Trim();
        for (var node = 1; node <= NodeCount; node++)
        {
            if (address == $"127.0.0.1:{Env($"NODE_{node}_PORT")}")
            {
                return $"node-{node}";
            }
        }

        return address ?? "?";
    }

    /// <summary>The pid of a running node, null when it is down.</summary>
    public int? NodePid(int node) => Pid($"NODE_{node}_PID");
    public int? RedisPid => Pid("REDIS_PID");

    /// <summary>CPU seconds of nginx: its master and its workers (the master's children, which do the proxying).</summary>
    public double NginxCpuSeconds()
    {
        var master = Pid("NGINX_PID") ?? throw new InvalidOperationException("nginx is not running");
        var children = File.ReadAllText($"/proc/{master}/task/{master}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return Proc.CpuSeconds(master) + children.Sum(c => Proc.CpuSeconds(int.Parse(c, CultureInfo.InvariantCulture)));
    }

    public string Env(string key) => _env.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"cluster.sh env has no {key}");

    private int? Pid(string key) => int.TryParse(_env.GetValueOrDefault(key), CultureInfo.InvariantCulture, out var pid) ? pid : null;

    /// <summary>Starts from nothing: whatever an earlier run left in the state dir is stopped and deleted first.</summary>
    public async Task StartAsync()
    {
        await RunAsync(["stop", "--clean"], check: false);
        await RunAsync(["start"], startEnv);
        await ReadEnvAsync();
    }

    /// <summary>Stops every process (logs and data stay in the state dir until the next start).</summary>
    public Task StopAsync() => RunAsync(["stop"], check: false);

    /// <summary>SIGKILL of node <paramref name="node"/>; returns once the process is gone.</summary>
    public async Task KillNodeAsync(int node)
    {
        await RunAsync(["kill-node", node.ToString(CultureInfo.InvariantCulture)]);
        await ReadEnvAsync();
    }

    public async Task StartNodeAsync(int node)
    {
        await RunAsync(["start-node", node.ToString(CultureInfo.InvariantCulture)]);
        _nodeStarted = Stopwatch.StartNew();
        await ReadEnvAsync();
    }

    /// <summary>Time since a node was last started again (<see cref="TimeSpan.MaxValue"/>: none was).</summary>
    public TimeSpan SinceNodeStarted => _nodeStarted?.Elapsed ?? TimeSpan.MaxValue;

    /// <summary>What node <paramref name="node"/>'s <c>/readyz</c> says of the upstream's lease; null when it does not answer.</summary>
    public async Task<LeaseView?> LeaseAsync(int node)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri(NodeUrl(node), "readyz"));
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var upstream = body.RootElement.GetProperty("checks").GetProperty("upstreams").GetProperty("data").GetProperty("local");
            var holder = upstream.GetProperty("holder").ValueKind == JsonValueKind.String ? upstream.GetProperty("holder").GetString() : null;
            return new LeaseView(response.IsSuccessStatusCode,
                holder is { } h && h.StartsWith("node-", StringComparison.Ordinal) ? int.Parse(h["node-".Length..], CultureInfo.InvariantCulture) : 0,
                upstream.GetProperty("fencingToken").ValueKind == JsonValueKind.Number ? upstream.GetProperty("fencingToken").GetInt64() : 0,
                upstream.GetProperty("heldHere").GetBoolean());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Waits until every running node's <c>/readyz</c> answers 200 and they agree on one holder; returns it.</summary>
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

    private async Task ReadEnvAsync()
    {
        var output = await RunAsync(["env"]);
        _env.Clear();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = line.IndexOf('=');
            if (eq > 0)
            {
                _env[line[..eq]] = line[(eq + 1)..];
            }
        }
    }

    private async Task<string> RunAsync(string[] args, IReadOnlyDictionary<string, string>? env = null, bool check = true)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CLUSTER_STATE_DIR"] = stateDir;
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        await File.AppendAllTextAsync(log, $"--- {DateTime.UtcNow:HH:mm:ss.fff} cluster.sh {string.Join(' ', args)} (exit {process.ExitCode})\n{await stderr}");
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"cluster.sh {string.Join(' ', args)} failed ({process.ExitCode}); see {log}");
        }

        return await stdout;
    }
}

/// <summary>One node's view of the upstream's lease (<c>/readyz</c>): ready, holder node (0: none), fencing token, held by this node.</summary>
internal sealed record LeaseView(bool Ready, int Holder, long FencingToken, bool HeldHere);

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
