using Microsoft.Extensions.Options;
using OpencodeGateway.Delivery.Internal;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;

namespace OpencodeGateway.Delivery;

/// <summary>
/// Every quarter of <see cref="ReplayOptions.IdleSessionTtl"/>, forgets the live state of sessions nobody on this node
/// watches and that saw no activity for that long, and the REST state cached for their snapshots.
/// </summary>
internal sealed class IdleSessionEvictionService(
    IOptions<ReplayOptions> options,
    LiveSessionRegistry registry,
    SessionFeeds feeds,
    SnapshotBaseCache bases,
    TimeProvider time,
    ILogger<IdleSessionEvictionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var ttl = options.Value.IdleSessionTtl;
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond, ttl.Ticks / 4));
        using var timer = new PeriodicTimer(period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var evicted = registry.EvictIdle(feeds.IsWatched);
                bases.EvictUnused(ttl);
                if (evicted > 0)
                {
                    DeliveryLog.EvictedIdle(logger, evicted);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }
}
