using System.Net.Http.Json;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// The real <c>opencode serve</c> and the mock LLM, started by the project's own <c>deploy/dev/opencode.sh</c> on
/// ports of their own (<c>GATEWAY_IT_OC_PORT</c>, default 4396, mock on the next port) with a fresh data dir.
/// </summary>
public sealed class OpencodeStack : IAsyncLifetime
{
    private readonly Dictionary<string, string> _env;

    public OpencodeStack()
        : this(int.TryParse(Environment.GetEnvironmentVariable("GATEWAY_IT_OC_PORT"), out var p) ? p : 4396)
    {
    }

    /// <summary>Another opencode (and mock) of a test's own, on <paramref name="port"/> and the next port.</summary>
    internal OpencodeStack(int port)
    {
        RepoRoot = RepoScript.Root;
        _env = new Dictionary<string, string>
        {
            ["OC_PORT"] = port.ToString(),
            ["MOCK_PORT"] = (port + 1).ToString(),
            ["OC_STATE_DIR"] = Path.Combine(RepoRoot, ".dev", $"it-opencode-{port}"),
        };
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
    }

    public string RepoRoot { get; }
    public Uri BaseUrl { get; private set; } = null!;
    public HttpClient Http { get; }
    public string LogPath => Path.Combine(_env["OC_STATE_DIR"], "opencode.log");

    public async Task InitializeAsync()
    {
        await RunAsync("stop", "--clean");
        BaseUrl = new Uri((await RunAsync("start")).Trim());
    }

    public async Task DisposeAsync()
    {
        await RunAsync("stop");
        Http.Dispose();
    }

    /// <summary>Kills opencode and starts it again on the same port and data (an upstream restart).</summary>
    public async Task RestartAsync() => await RunAsync("restart-opencode");

    /// <summary>How many <c>/global/event</c> subscriptions opencode itself logged (it logs one line per connection).</summary>
    public int GlobalEventConnections() =>
        File.Exists(LogPath) ? File.ReadLines(LogPath).Count(l => l.Contains("message=\"global event connected\"", StringComparison.Ordinal)) : 0;

    public async Task<JsonElement> StoredMessagesAsync(string sessionId) =>
        await Http.GetFromJsonAsync<JsonElement>(new Uri(BaseUrl, $"session/{sessionId}/message"));

    // A failed stop (nothing to stop) is not an error.
    private async Task<string> RunAsync(params string[] args) =>
        (await RepoScript.RunAsync("deploy/dev/opencode.sh", args, _env, check: args[0] != "stop")).Stdout;
}

[CollectionDefinition(Name)]
public sealed class OpencodeCollection : ICollectionFixture<OpencodeStack>
{
    public const string Name = "real opencode";
}
