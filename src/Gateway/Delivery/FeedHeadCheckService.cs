using Microsoft.Extensions.Options;
using OpencodeGateway.Cluster;
using OpencodeGateway.Delivery.Internal;

namespace OpencodeGateway.Delivery;

/// <summary>
/// In a cluster, events reach a node's feeds through Redis pub/sub, which is at-most-once: every
/// <see cref="ClusterOptions.HistoryCheckInterval"/>, and as soon as Redis is reachable again, each feed compares its
/// position with the history's head and repairs what it missed (a lost last event would otherwise wait for the next).
/// </summary>
internal sealed class FeedHeadCheckService(
    SessionFeeds feeds,
    RedisConnection redis,
    IOptions<ClusterOptions> options,
    TimeProvider time,
    ILogger<FeedHeadCheckService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var restored = new SemaphoreSlim(0);
        void OnRestored() => restored.Release();
        redis.Restored += OnRestored;
        try
        {
            var failing = false;
            while (!stoppingToken.IsCancellationRequested)
            {
                await Task.WhenAny(Task.Delay(options.Value.HistoryCheckInterval, time, stoppingToken), restored.WaitAsync(stoppingToken));
                // While Redis is down there is nothing to compare with (and its outage is logged once, by the connection).
                if (!redis.IsConnected)
                {
                    continue;
                }

                try
                {
                    await feeds.CheckHeadsAsync(stoppingToken);
                    failing = false;
                }
                catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
                {
                    // Once per run of failures, not once per interval.
                    if (!failing)
                    {
                        DeliveryLog.HeadCheckFailed(logger, e.Message);
                    }

                    failing = true;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            redis.Restored -= OnRestored;
        }
    }
}
