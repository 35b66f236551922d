using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Sessions.History;
using OpencodeGateway.Sessions.Live.Internal;

namespace OpencodeGateway.Sessions.Live;

/// <summary>Forgets, every quarter of <see cref="ReplayOptions.IdleSessionTtl"/>, the sessions that went idle.</summary>
internal sealed class LiveSessionEvictionService(
    IOptions<ReplayOptions> options,
    LiveSessionRegistry registry,
    TimeProvider time,
    ILogger<LiveSessionEvictionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond, options.Value.IdleSessionTtl.Ticks / 4));
        using var timer = new PeriodicTimer(period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var evicted = registry.EvictIdle();
                if (evicted > 0)
                {
                    LiveLog.EvictedIdle(logger, evicted);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }
}
