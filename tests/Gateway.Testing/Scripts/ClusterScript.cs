using System.Globalization;
using System.Text.Json;

namespace OpencodeGateway.Testing;

/// <summary>
/// The project's <c>deploy/cluster/cluster.sh</c> (<paramref name="script"/>) for one state dir, as the tests and the benchmark drive it: runs its
/// commands and reads what it records (<c>cluster.sh env</c>) after every change. With a log file, each command's
/// stderr goes there.
/// </summary>
public sealed class ClusterScript(string script, string stateDir, string? log = null)
{
    private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };

    public string StateDir => stateDir;
    public int NodeCount => int.Parse(Env("NODE_COUNT"), CultureInfo.InvariantCulture);
    public Uri FrontUrl => new(Env("FRONT_URL") + "/");
    public Uri FrontHubUrl => new(FrontUrl, "hubs/session");

    public Uri NodeUrl(int node) => new(Env($"NODE_{node}_URL") + "/");

    public Uri NodeHubUrl(int node) => new(NodeUrl(node), "hubs/session");

    /// <summary>The pid of a running node, null when it is down.</summary>
    public int? NodePid(int node) => Pid($"NODE_{node}_PID");

    public string Env(string key) => _env.TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"cluster.sh env has no {key}");

    public int? Pid(string key) => int.TryParse(_env.GetValueOrDefault(key), CultureInfo.InvariantCulture, out var pid) ? pid : null;

    /// <summary>Starts from nothing: whatever an earlier run left in the state dir is stopped and deleted first.</summary>
    public async Task StartAsync(IReadOnlyDictionary<string, string> env)
    {
        await RunAsync(["stop", "--clean"], check: false);
        await RunAsync(["start"], env);
        await ReadEnvAsync();
    }

    /// <summary>Stops every process (logs and data stay in the state dir until the next start).</summary>
    public Task StopAsync() => RunAsync(["stop"], check: false);

    /// <summary>SIGKILL of node <paramref name="node"/>; returns once the process is gone.</summary>
    public Task KillNodeAsync(int node) => ChangeAsync("kill-node", node);

    /// <summary>SIGTERM of node <paramref name="node"/>; returns once it exited.</summary>
    public Task TermNodeAsync(int node) => ChangeAsync("term-node", node);

    public Task StartNodeAsync(int node) => ChangeAsync("start-node", node);

    public Task RedisStopAsync() => ChangeAsync("redis-stop");

    public Task RedisStartAsync() => ChangeAsync("redis-start");

    public Task PostgresStopAsync() => ChangeAsync("postgres-stop");

    public Task PostgresStartAsync() => ChangeAsync("postgres-start");

    /// <summary>What node <paramref name="node"/>'s <c>GET /api/upstreams</c> says of the upstream's lease; null when it does not answer.</summary>
    public Task<LeaseView?> LeaseAsync(int node, string upstream = "local") => LeaseAsync(NodeUrl(node), upstream);

    /// <summary>What the gateway at <paramref name="nodeUrl"/> says of the upstream's lease; null when it does not answer.</summary>
    public async Task<LeaseView?> LeaseAsync(Uri nodeUrl, string upstream = "local")
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(nodeUrl, "api/upstreams"));
            request.Headers.Add("X-Api-Key", Env("ADMIN_API_KEY"));
            using var response = await _http.SendAsync(request);
            response.EnsureSuccessStatusCode();
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var data = body.RootElement.EnumerateArray().First(u => u.GetProperty("id").GetString() == upstream);
            var holder = data.TryGetProperty("holder", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null;
            return new LeaseView(data.GetProperty("connected").GetBoolean(),
                holder is { } name && name.StartsWith("node-", StringComparison.Ordinal) ? int.Parse(name["node-".Length..], CultureInfo.InvariantCulture) : 0,
                data.TryGetProperty("fencingToken", out var token) && token.ValueKind == JsonValueKind.Number ? token.GetInt64() : 0,
                data.GetProperty("heldHere").GetBoolean());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return null;
        }
    }

    private async Task ChangeAsync(string command, int? node = null)
    {
        await RunAsync(node is { } n ? [command, n.ToString(CultureInfo.InvariantCulture)] : [command]);
        await ReadEnvAsync();
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
        var environment = new Dictionary<string, string>(env ?? new Dictionary<string, string>()) { ["CLUSTER_STATE_DIR"] = stateDir };
        return (await RepoScript.RunAsync(script, args, environment, check, log)).Stdout;
    }
}

/// <summary>
/// One node's view of an upstream's lease (<c>GET /api/upstreams</c>): its stream read, holder node (0: none), fencing
/// token, held by this node.
/// </summary>
public sealed record LeaseView(bool Ready, int Holder, long FencingToken, bool HeldHere);
