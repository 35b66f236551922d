using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster.Internal;
using StackExchange.Redis;

namespace OpencodeGateway.Cluster;

/// <summary>
/// This node's connection to the cluster's Redis, shared by the session history and the leases (the SignalR backplane
/// opens one configured like it, under its channel prefix). It is opened when the host starts and reconnects by itself;
/// while Redis is unreachable, calls fail within <see cref="ClusterOptions.OperationTimeout"/> instead of hanging.
/// </summary>
public sealed class RedisConnection : IHostedLifecycleService, IAsyncDisposable
{
    private readonly ClusterOptions _options;
    private readonly ILogger<RedisConnection> _logger;
    private readonly TaskCompletionSource<IConnectionMultiplexer> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IConnectionMultiplexer? _multiplexer;

    public RedisConnection(IOptions<ClusterOptions> options, ILogger<RedisConnection> logger)
    {
        _options = options.Value;
        _logger = logger;
        Keys = new RedisKeys(_options.KeyPrefix);
    }

    public RedisKeys Keys { get; }

    public string NodeId => _options.NodeId;

    /// <summary>The multiplexer; throws before the host started.</summary>
    public IConnectionMultiplexer Multiplexer => _multiplexer ?? throw new InvalidOperationException("Redis is not connected yet.");

    public IDatabase Database => Multiplexer.GetDatabase();

    public bool IsConnected => _multiplexer?.IsConnected == true;

    /// <summary>Raised (on a Redis thread) when the connection to Redis is back after a loss.</summary>
    public event Action? Restored;

    /// <summary>Raised (on a Redis thread) when the connection to Redis is lost.</summary>
    public event Action? Lost;

    /// <summary>The multiplexer once it exists, for components created before the host starts (the backplane).</summary>
    public Task<IConnectionMultiplexer> ConnectedAsync() => _connected.Task;

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var configuration = ConfigurationOptions.Parse(_options.RedisConnectionString!);
        // Start even when Redis is down (it reconnects in the background), and never wait longer than a client would.
        configuration.AbortOnConnectFail = false;
        // While Redis is unreachable a command fails at once instead of waiting in the client's backlog: a command
        // sent late, when Redis is back, could act on a world that changed meanwhile (a lease taken from its holder).
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ClientName ??= $"opencode-gateway:{_options.NodeId}";
        var timeout = (int)_options.OperationTimeout.TotalMilliseconds;
        configuration.ConnectTimeout = Math.Min(configuration.ConnectTimeout, timeout);
        configuration.SyncTimeout = timeout;
        configuration.AsyncTimeout = timeout;
        var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration);
        multiplexer.ConnectionFailed += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                ClusterLog.RedisLost(_logger, e.EndPoint?.ToString() ?? "?", e.FailureType.ToString());
                Lost?.Invoke();
            }
        };
        multiplexer.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType == ConnectionType.Interactive)
            {
                ClusterLog.RedisRestored(_logger, e.EndPoint?.ToString() ?? "?");
                Restored?.Invoke();
            }
        };
        _multiplexer = multiplexer;
        _connected.TrySetResult(multiplexer);
        ClusterLog.RedisConnecting(_logger, _options.NodeId, configuration.ToString(includePassword: false), multiplexer.IsConnected);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_multiplexer is not null)
        {
            await _multiplexer.DisposeAsync();
        }
    }
}
