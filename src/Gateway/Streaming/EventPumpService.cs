using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Streaming;

/// <summary>Runs one <see cref="UpstreamEventPump"/> per configured upstream.</summary>
internal sealed class EventPumpService(
    IOptions<UpstreamsOptions> upstreams,
    IOptions<StreamingOptions> options,
    IUpstreamEventSink sink,
    UpstreamStreamState state,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<UpstreamEventPump> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(upstreams.Value.Upstreams
            .Select(u => new UpstreamEventPump(u, options.Value, sink, state, metrics, time, logger))
            .Select(p => Task.Run(() => p.RunAsync(stoppingToken), stoppingToken)));
}
