using System.Diagnostics;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// The real cluster topology, started by the project's own <c>deploy/cluster/cluster.sh</c>: Redis (AOF), PostgreSQL,
/// the real opencode with the mock LLM, three gateway processes and nginx in front. The nodes reach opencode through an
/// <see cref="UpstreamProxy"/> of this process, which counts event streams (how many at once, ever) and REST calls.
/// </summary>
public sealed class ClusterStack : IAsyncLifetime
{
    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);

    public ClusterStack()
    {
        RepoRoot = OpencodeStack.FindRepoRoot();
        StateDir = Path.Combine(RepoRoot, ".dev", "it-cluster");
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
    }

    public string RepoRoot { get; }
    public string StateDir { get; }
    public HttpClient Http { get; }
    public UpstreamProxy Proxy { get; private set; } = null!;
    public Uri FrontUrl => new(Env("FRONT_URL") + "/");
    public Uri OpencodeUrl => new(Env("OPENCODE_URL") + "/");
    public string SigningKey => Env("SIGNING_KEY");
    public string AdminApiKey => Env("ADMIN_API_KEY");
    public int NodeCount => int.Parse(Env("NODE_COUNT"));

    public Uri NodeUrl(int node) => new(Env($"NODE_{node}_URL") + "/");

    public Uri HubUrl(int node) => new(NodeUrl(node), "hubs/session");

    public Uri FrontHubUrl => new(FrontUrl, "hubs/session");

    public string Env(string key) => _env.TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"cluster.sh env has no {key}");

    public async Task InitializeAsync()
    {
        // opencode's port is chosen here, so the proxy in front of it exists before the nodes start.
        var ocPort = FreePort();
        Proxy = await UpstreamProxy.StartAsync(new Uri($"http://127.0.0.1:{ocPort}/"));
        await RunAsync(["stop", "--clean"], check: false);
        await RunAsync(["start"], extraEnv: new()
        {
            ["CLUSTER_OC_PORT"] = ocPort.ToString(),
            ["CLUSTER_MOCK_PORT"] = FreePort().ToString(),
            ["GATEWAY_NODE_ARGS"] = $"--Gateway:Upstreams:0:BaseUrl={Proxy.BaseUrl} --Gateway:Cluster:HistoryCheckInterval=00:00:01",
        });
        await ReadEnvAsync();
    }

    public async Task DisposeAsync()
    {
        await RunAsync(["stop"], check: false);
        await Proxy.DisposeAsync();
        Http.Dispose();
    }

    /// <summary>
    /// One more node of this cluster, in this process (same Redis, PostgreSQL, upstream and keys as the others), for what
    /// a test must set up inside the node: <paramref name="options"/>' clock, socket and settings on top.
    /// </summary>
    public Task<GatewayHost> StartInProcessNodeAsync(string nodeId, GatewayHostOptions options) =>
        GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = Proxy.BaseUrl,
            Environment = "Production",
            SocketSendBufferSize = options.SocketSendBufferSize,
            Time = options.Time,
            Configure = options.Configure,
            Settings = new Dictionary<string, string?>(options.Settings)
            {
                ["ConnectionStrings:Redis"] = Env("REDIS_URL"),
                ["ConnectionStrings:Gateway"] = Env("PG_CONN"),
                ["Gateway:Cluster:NodeId"] = nodeId,
                ["Gateway:Cluster:HistoryCheckInterval"] = "00:00:01",
                ["Gateway:Auth:Jwt:SigningKey"] = SigningKey,
            },
        });

    /// <summary>A token of <paramref name="userId"/> signed with the cluster's key.</summary>
    public string Token(string userId = "alice", params string[] workspaces) => TestTokens.Mint(userId, workspaces, SigningKey);

    /// <summary>Hub options as a client behind the load balancer: WebSockets without negotiate, reconnecting by itself.</summary>
    public GatewayHubClientOptions As(string userId = "alice", params string[] workspaces) =>
        new() { AccessToken = Token(userId, workspaces), SkipNegotiation = true, AutomaticReconnect = true };

    public async Task KillNodeAsync(int node)
    {
        await RunAsync(["kill-node", node.ToString()]);
        await ReadEnvAsync();
    }

    public async Task TermNodeAsync(int node)
    {
        await RunAsync(["term-node", node.ToString()]);
        await ReadEnvAsync();
    }

    public async Task StartNodeAsync(int node)
    {
        await RunAsync(["start-node", node.ToString()]);
        await ReadEnvAsync();
    }

    public Task RedisStopAsync() => RunAsync(["redis-stop"]);

    public Task RedisStartAsync() => RunAsync(["redis-start"]);

    public Task PostgresStopAsync() => RunAsync(["postgres-stop"]);

    public Task PostgresStartAsync() => RunAsync(["postgres-start"]);

    /// <summary>Makes the next Redis start empty, as a Redis without persistence restarts.</summary>
    public void ForgetRedisData()
    {
        var dir = Env("REDIS_DIR");
        foreach (var name in new[] { "appendonlydir", "dump.rdb" })
        {
            var path = Path.Combine(dir, name);
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
            else if (File.Exists(path))
            {
                File.Delete(path);
            }
        }
    }

    /// <summary>Every node's <c>/readyz</c> answer (status code and the upstream's data).</summary>
    public async Task<(int Status, JsonElement Body)> ReadyAsync(int node)
    {
        using var response = await Http.GetAsync(new Uri(NodeUrl(node), "readyz"));
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>The node holding the upstream's lease, from any live node's <c>/readyz</c> (0 when none is known).</summary>
    public async Task<(int Node, long Token)> HolderAsync()
    {
        for (var node = 1; node <= NodeCount; node++)
        {
            if (string.IsNullOrEmpty(Env($"NODE_{node}_PID")))
            {
                continue;
            }

            try
            {
                var (_, body) = await ReadyAsync(node);
                var upstream = body.GetProperty("checks").GetProperty("upstreams").GetProperty("data").GetProperty("local");
                if (upstream.GetProperty("holder").GetString() is { } holder && upstream.GetProperty("fencingToken").ValueKind == JsonValueKind.Number)
                {
                    return (int.Parse(holder["node-".Length..]), upstream.GetProperty("fencingToken").GetInt64());
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or KeyNotFoundException or InvalidOperationException)
            {
                // that node is down or not ready: ask the next
            }
        }

        return (0, 0);
    }

    /// <summary>
    /// The node's lease gauges for the upstream from its <c>/metrics</c>: whether it holds the lease, and the fencing
    /// token it holds it under (null when it publishes none).
    /// </summary>
    public async Task<(int Held, long? Token)> LeaseMetricsAsync(int node)
    {
        var text = await Http.GetStringAsync(new Uri(NodeUrl(node), "metrics"));
        string? Sample(string name) => text.Split('\n')
            .FirstOrDefault(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains("upstream=\"local\"", StringComparison.Ordinal))
            ?.Split(' ')[^1];
        var held = Sample("gateway_upstream_lease_held") ?? throw new InvalidOperationException($"node {node} publishes no lease gauge");
        return (int.Parse(held), Sample("gateway_upstream_lease_fencing_token") is { } token ? long.Parse(token) : null);
    }

    public async Task<JsonElement> StoredMessagesAsync(string sessionId) =>
        await Http.GetFromJsonAsync<JsonElement>(new Uri(OpencodeUrl, $"session/{sessionId}/message"));

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

    private async Task<string> RunAsync(string[] args, bool check = true, Dictionary<string, string>? extraEnv = null)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(RepoRoot, "deploy", "cluster", "cluster.sh"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["CLUSTER_STATE_DIR"] = StateDir;
        foreach (var (key, value) in extraEnv ?? [])
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"cluster.sh {string.Join(' ', args)} failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterStack>
{
    public const string Name = "real cluster";
}
