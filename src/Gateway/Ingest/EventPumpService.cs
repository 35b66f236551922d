using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Leases;
using OpencodeGateway.Ingest.Internal;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Ingest;

/// <summary>
/// Runs one <see cref="UpstreamEventPump"/> per configured upstream while this node holds the upstream's lease: always
/// on a single node; in a cluster, on exactly one node at a time. When the lease is lost the pump stops at once; when the
/// host stops, the pump stops, what it read is stored, and the lease is released so another node takes over at once.
/// </summary>
internal sealed class EventPumpService(
    IOptions<UpstreamsOptions> upstreams,
    IOptions<StreamingOptions> options,
    IUpstreamLeases leases,
    IUpstreamEventSink sink,
    UpstreamStreamState state,
    IHttpClientFactory httpClients,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<UpstreamEventPump> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(upstreams.Value.Upstreams.Select(u => Task.Run(() => HoldAndPumpAsync(u, stoppingToken), stoppingToken)));

    private async Task HoldAndPumpAsync(UpstreamOptions upstream, CancellationToken stoppingToken)
    {
        var pump = new UpstreamEventPump(upstream, options.Value, sink, state, httpClients, metrics, time, logger);
        while (!stoppingToken.IsCancellationRequested)
        {
            IUpstreamLease lease;
            try
            {
                lease = await leases.AcquireAsync(upstream.Id, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            await using (lease)
            {
                state.SetLease(upstream.Id, lease);
                using var reading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lease.Lost);
                await pump.RunAsync(lease.Value, reading.Token);
                state.SetLease(upstream.Id, null);
                if (lease.Lost.IsCancellationRequested)
                {
                    StreamingLog.LeaseLost(logger, upstream.Id, lease.Value);
                }
            }
        }
    }
}
