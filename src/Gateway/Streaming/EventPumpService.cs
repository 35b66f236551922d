using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Streaming;

/// <summary>Runs one <see cref="UpstreamEventPump"/> per configured upstream, and forgets idle sessions.</summary>
internal sealed class EventPumpService(
    IOptions<GatewayOptions> options,
    SessionEventDispatcher dispatcher,
    LiveSessionRegistry registry,
    UpstreamStreamState state,
    IHttpClientFactory httpClients,
    GatewayMetrics metrics,
    TimeProvider time,
    ILoggerFactory loggerFactory) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var logger = loggerFactory.CreateLogger<UpstreamEventPump>();
        var pumps = options.Value.Upstreams
            .Select(u => new UpstreamEventPump(u, options.Value.Streaming, dispatcher, state, httpClients, metrics, time, logger))
            .Select(p => Task.Run(() => p.RunAsync(stoppingToken), stoppingToken))
            .ToList();
        pumps.Add(EvictIdleSessionsAsync(stoppingToken));
        await Task.WhenAll(pumps);
    }

    private async Task EvictIdleSessionsAsync(CancellationToken stoppingToken)
    {
        var logger = loggerFactory.CreateLogger<EventPumpService>();
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond, options.Value.Replay.IdleSessionTtl.Ticks / 4));
        using var timer = new PeriodicTimer(period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var evicted = registry.EvictIdle();
                if (evicted > 0)
                {
                    Log.EvictedIdle(logger, evicted);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }
}
