using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster;
using OpencodeGateway.Testing;
using StackExchange.Redis;

namespace Gateway.Tests.Support;

/// <summary>
/// A real <c>redis-server</c> for tests: <c>GATEWAY_TEST_REDIS</c> (<c>host:port</c>) when set; otherwise, outside CI,
/// the dev server of <c>deploy/dev/redis.sh start</c> (started here; idempotent). In CI (<c>CI</c> set) a missing
/// <c>GATEWAY_TEST_REDIS</c> fails the tests instead of silently skipping them. Tests isolate themselves with their own
/// key prefix (<see cref="NewKeyPrefix"/>), never by flushing the server. Tests that stop and start Redis use
/// <see cref="RestartableServerAsync"/>, a server of their own.
/// </summary>
public sealed class RedisFixture : IAsyncLifetime
{
    private RestartableRedisServer? _restartable;

    /// <summary><c>host:port</c> of the shared server.</summary>
    public string Endpoint { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable("GATEWAY_TEST_REDIS");
        if (string.IsNullOrWhiteSpace(configured))
        {
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            {
                throw new InvalidOperationException(
                    "GATEWAY_TEST_REDIS is not set and CI is: the Redis suites must run in CI. "
                    + "Set it to host:port (e.g. the output of deploy/dev/redis.sh start).");
            }

            configured = await RedisScript.RunAsync(["start"], new Dictionary<string, string>());
        }

        Endpoint = configured.Trim();
        await using var probe = await ConnectAsync();
        await probe.GetDatabase().PingAsync();
    }

    public async Task DisposeAsync()
    {
        if (_restartable is not null)
        {
            await _restartable.DisposeAsync();
        }
    }

    /// <summary>A key prefix no other test uses: one "cluster" per test.</summary>
    public static string NewKeyPrefix() => "spec" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>A plain client of the shared server, for a test's own reads and writes.</summary>
    public Task<ConnectionMultiplexer> ConnectAsync() => ConnectionMultiplexer.ConnectAsync(Endpoint);

    /// <summary>Deletes every key under <paramref name="keyPrefix"/>: that cluster's data is lost, as after a restart without persistence.</summary>
    public async Task DeleteKeysAsync(string keyPrefix)
    {
        await using var client = await ConnectAsync();
        var server = client.GetServers().Single();
        await foreach (var key in server.KeysAsync(pattern: keyPrefix + ":*"))
        {
            await client.GetDatabase().KeyDeleteAsync(key);
        }
    }

    /// <summary>One node's connection, as the gateway opens it (fail-fast, bounded timeouts), already connected.</summary>
    public static async Task<RedisConnection> ConnectNodeAsync(ClusterOptions options)
    {
        var connection = new RedisConnection(Options.Create(options), NullLogger<RedisConnection>.Instance);
        await connection.StartingAsync(CancellationToken.None);
        return connection;
    }

    /// <summary>Cluster options of one node on <paramref name="endpoint"/> under <paramref name="keyPrefix"/>.</summary>
    public static ClusterOptions Cluster(string endpoint, string keyPrefix, string nodeId) => new()
    {
        RedisConnectionString = endpoint,
        KeyPrefix = keyPrefix,
        NodeId = nodeId,
        OperationTimeout = TimeSpan.FromSeconds(2),
    };

    /// <summary>The TTL of <see cref="ShortLeases"/>: short enough to wait for, long enough for a busy machine's pauses.</summary>
    public static readonly TimeSpan ShortLeaseTtl = TimeSpan.FromSeconds(1);

    public static readonly TimeSpan ShortLeaseRenewInterval = TimeSpan.FromMilliseconds(300);

    /// <summary>Leases that expire within a second unless renewed, so tests see expiry happen on Redis's clock.</summary>
    public static void ShortLeases(ClusterOptions options)
    {
        options.LeaseTtl = ShortLeaseTtl;
        options.LeaseRenewInterval = ShortLeaseRenewInterval;
        options.LeaseRetryInterval = TimeSpan.FromMilliseconds(50);
    }

    /// <summary>A server of this fixture's own that tests may stop and start (started on first use, kept running).</summary>
    public async Task<RestartableRedisServer> RestartableServerAsync()
    {
        if (_restartable is null)
        {
            var server = new RestartableRedisServer(RestartablePort());
            await server.StartAsync();
            _restartable = server;
        }

        return _restartable;
    }

    // GATEWAY_TEST_REDIS_RESTART_PORT when set (test.sh and developers sharing a machine pick it), otherwise a free one.
    private static int RestartablePort() =>
        int.TryParse(Environment.GetEnvironmentVariable("GATEWAY_TEST_REDIS_RESTART_PORT"), out var port) ? port : FreePorts.Take();
}

/// <summary>
/// A <c>redis-server</c> with AOF that a test stops and starts (<c>deploy/dev/redis.sh</c> on its own port and data
/// directory), to see what a Redis restart with or without its data does.
/// </summary>
public sealed class RestartableRedisServer(int port) : IAsyncDisposable
{
    private readonly Dictionary<string, string> _env = new()
    {
        ["GATEWAY_DEV_REDIS_PORT"] = port.ToString(),
        ["GATEWAY_DEV_REDIS_DIR"] = Path.Combine(Path.GetTempPath(), $"gw-test-redis-{port}-{Guid.NewGuid():N}"),
        ["GATEWAY_DEV_REDIS_AOF"] = "1",
    };

    public string Endpoint { get; } = $"127.0.0.1:{port}";

    public Task StartAsync() => RedisScript.RunAsync(["start"], _env);

    /// <summary>Stops the server (SIGTERM: it writes its AOF first); without <paramref name="keepData"/> its data is deleted.</summary>
    public Task StopAsync(bool keepData) => RedisScript.RunAsync(keepData ? ["stop"] : ["stop", "--clean"], _env);

    public async ValueTask DisposeAsync() => await StopAsync(keepData: false);
}

internal static class RedisScript
{
    /// <summary>Runs <c>deploy/dev/redis.sh</c>; returns its last stdout line (the address, for <c>start</c>).</summary>
    public static async Task<string> RunAsync(string[] args, IReadOnlyDictionary<string, string> env) =>
        (await RepoScript.RunAsync("deploy/dev/redis.sh", args, env)).LastLine;
}

[CollectionDefinition(Name)]
public sealed class RedisCollection : ICollectionFixture<RedisFixture>
{
    public const string Name = "redis";
}
