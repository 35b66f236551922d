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
    public ClusterStack()
    {
        Script = new ClusterScript(RepoScript.PathOf("deploy", "cluster", "cluster.sh"), RepoScript.PathOf(".dev", "it-cluster"));
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The cluster's commands (kill a node, stop Redis, …) and what it recorded (<c>Env</c>).</summary>
    public ClusterScript Script { get; }
    public HttpClient Http { get; }
    public UpstreamProxy Proxy { get; private set; } = null!;
    public Uri FrontUrl => Script.FrontUrl;
    public Uri OpencodeUrl => new(Env("OPENCODE_URL") + "/");
    public string SigningKey => Env("SIGNING_KEY");
    public int NodeCount => Script.NodeCount;

    public Uri NodeUrl(int node) => Script.NodeUrl(node);

    public Uri HubUrl(int node) => Script.NodeHubUrl(node);

    public Uri FrontHubUrl => Script.FrontHubUrl;

    public string Env(string key) => Script.Env(key);

    public async Task InitializeAsync()
    {
        // opencode's port is chosen here, so the proxy in front of it exists before the nodes start.
        var ocPort = PortFromEnvironment("CLUSTER_OC_PORT") ?? FreePorts.Take();
        Proxy = await UpstreamProxy.StartAsync(new Uri($"http://127.0.0.1:{ocPort}/"));
        await Script.StartAsync(new Dictionary<string, string>
        {
            ["CLUSTER_OC_PORT"] = ocPort.ToString(),
            ["CLUSTER_MOCK_PORT"] = (PortFromEnvironment("CLUSTER_MOCK_PORT") ?? FreePorts.Take()).ToString(),
            ["GATEWAY_NODE_ARGS"] = $"--Gateway:Upstreams:0:BaseUrl={Proxy.BaseUrl} --Gateway:Cluster:HistoryCheckInterval=00:00:01",
        });
    }

    public async Task DisposeAsync()
    {
        await Script.StopAsync();
        await Proxy.DisposeAsync();
        Http.Dispose();
    }

    /// <summary>
    /// One more node of this cluster, in this process (same Redis, PostgreSQL, upstream and keys as the others), for what
    /// a test must set up inside the node: <paramref name="options"/>' clock, socket and settings on top, and
    /// <paramref name="redis"/> instead of the cluster's Redis address (a proxy in front of it).
    /// </summary>
    public Task<GatewayHost> StartInProcessNodeAsync(string nodeId, GatewayHostOptions options, string? redis = null) =>
        GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = Proxy.BaseUrl,
            Environment = "Production",
            Time = options.Time,
            Configure = options.Configure,
            Settings = new Dictionary<string, string?>(options.Settings)
            {
                ["ConnectionStrings:Redis"] = redis ?? Env("REDIS_URL"),
                ["ConnectionStrings:Gateway"] = Env("PG_CONN"),
                ["Gateway:Cluster:NodeId"] = nodeId,
                ["Gateway:Cluster:HistoryCheckInterval"] = "00:00:01",
                ["Gateway:Auth:Jwt:SigningKey"] = SigningKey,
                // The cluster's admin key too (beside the test host's own): the tests ask every node what it holds.
                ["Gateway:Auth:ApiKeys:1:Name"] = "cluster",
                ["Gateway:Auth:ApiKeys:1:Admin"] = "true",
                ["Gateway:Auth:ApiKeys:1:KeyHash"] = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(
                    System.Text.Encoding.UTF8.GetBytes(Env("ADMIN_API_KEY")))),
            },
        });

    /// <summary>A token of <paramref name="userId"/> signed with the cluster's key.</summary>
    public string Token(string userId = "alice", params string[] workspaces) => TestTokens.Mint(userId, workspaces, SigningKey);

    /// <summary>Hub options as a client behind the load balancer: WebSockets without negotiate, reconnecting by itself.</summary>
    public GatewayHubClientOptions As(string userId = "alice", params string[] workspaces) =>
        new() { AccessToken = Token(userId, workspaces), SkipNegotiation = true, AutomaticReconnect = true };

    public Task KillNodeAsync(int node) => Script.KillNodeAsync(node);

    public Task TermNodeAsync(int node) => Script.TermNodeAsync(node);

    public Task StartNodeAsync(int node) => Script.StartNodeAsync(node);

    /// <summary>Freezes node <paramref name="node"/>'s process (SIGSTOP), as a long GC pause or a stalled VM would; <see cref="ResumeNodeAsync"/> thaws it.</summary>
    public Task PauseNodeAsync(int node) => SignalNodeAsync(node, "STOP");

    public Task ResumeNodeAsync(int node) => SignalNodeAsync(node, "CONT");

    private async Task SignalNodeAsync(int node, string signal)
    {
        var pid = Script.NodePid(node) ?? throw new InvalidOperationException($"node {node} is not running");
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    public Task RedisStopAsync() => Script.RedisStopAsync();

    public Task RedisStartAsync() => Script.RedisStartAsync();

    public Task PostgresStopAsync() => Script.PostgresStopAsync();

    public Task PostgresStartAsync() => Script.PostgresStartAsync();

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

    /// <summary>A node's <c>/readyz</c> answer (status code and, asked as an admin, each check's status).</summary>
    public async Task<(int Status, JsonElement Body)> ReadyAsync(int node)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(NodeUrl(node), "readyz"));
        request.Headers.Add("X-Api-Key", Env("ADMIN_API_KEY"));
        using var response = await Http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>
    /// The node holding the upstream's lease, from any live node's <c>/readyz</c> (0 when none is known); not asking
    /// <paramref name="skip"/> (a paused node, which would keep each ask waiting for its timeout).
    /// </summary>
    public async Task<(int Node, long Token)> HolderAsync(int? skip = null)
    {
        for (var node = 1; node <= NodeCount; node++)
        {
            if (node != skip && Script.NodePid(node) is not null && await Script.LeaseAsync(node) is { Holder: > 0 } lease)
            {
                return (lease.Holder, lease.FencingToken);
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
        // (the nodes run in Production without management URLs: the internals are for admins)
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(NodeUrl(node), "metrics"));
        request.Headers.Add("X-Api-Key", Env("ADMIN_API_KEY"));
        using var response = await Http.SendAsync(request);
        var text = await response.EnsureSuccessStatusCode().Content.ReadAsStringAsync();
        string? Sample(string name) => text.Split('\n')
            .FirstOrDefault(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains("upstream=\"local\"", StringComparison.Ordinal))
            ?.Split(' ')[^1];
        var held = Sample("gateway_upstream_lease_held") ?? throw new InvalidOperationException($"node {node} publishes no lease gauge");
        return (int.Parse(held), Sample("gateway_upstream_lease_fencing_token") is { } token ? long.Parse(token) : null);
    }

    public async Task<JsonElement> StoredMessagesAsync(string sessionId) =>
        await Http.GetFromJsonAsync<JsonElement>(new Uri(OpencodeUrl, $"session/{sessionId}/message"));

    private static int? PortFromEnvironment(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out var port) ? port : null;
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterStack>
{
    public const string Name = "real cluster";
}
