using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Leases;
using OpencodeGateway.Ingest.Internal;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Ingest;

/// <summary>
/// Runs one <see cref="UpstreamEventPump"/> per upstream of the <see cref="UpstreamRegistry"/> while this node holds the
/// upstream's lease: always on a single node; in a cluster, on exactly one node at a time, the leases spread over the
/// nodes. It follows the registry: an upstream added gets a pump; one removed has its pump stopped, the watchers of its
/// sessions told (an <c>error</c> event, <c>upstream_not_found</c>) and its lease retired. When the lease is lost the pump
/// stops at once; when it is handed over or the host stops, the pump stops, what it read is stored, and the lease is
/// released so another node takes over at once.
/// </summary>
internal sealed class EventPumpService(
    UpstreamRegistry registry,
    IOptions<StreamingOptions> options,
    IOptions<UpstreamRegistryOptions> registryOptions,
    IUpstreamLeases leases,
    IUpstreamEventSink sink,
    UpstreamStreamState state,
    IHttpClientFactory httpClients,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<UpstreamEventPump> logger) : BackgroundService
{
    private readonly Lock _lock = new();
    // The pump of each upstream the registry holds, and the task of each id's latest pump (running, or still stopping
    // after its upstream was removed: the next registration of that id waits for it).
    private readonly Dictionary<string, Pump> _pumps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _tasks = new(StringComparer.Ordinal);
    private CancellationToken _stopping;

    private sealed record Pump(OpencodeClient Upstream, CancellationTokenSource Removed);

    /// <summary>
    /// How long a removed upstream's lease keeps every node out: nodes pick a removal up within one refresh interval;
    /// until then one that has not could take the lease and read the removed server again.
    /// </summary>
    private TimeSpan RetireQuarantine => 2 * registryOptions.Value.RefreshInterval;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        using (ChangeToken.OnChange(registry.GetChangeToken, Follow))
        {
            Follow();
            await Task.Delay(Timeout.InfiniteTimeSpan, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        Task[] running;
        lock (_lock)
        {
            running = [.. _tasks.Values];
        }

        await Task.WhenAll(running);
    }

    /// <summary>Starts a pump for every upstream the registry holds without one; stops those of upstreams it no longer holds.</summary>
    private void Follow()
    {
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested)
            {
                return;
            }

            var current = registry.All.ToDictionary(u => u.UpstreamId, StringComparer.Ordinal);
            foreach (var (id, pump) in _pumps.ToList())
            {
                if (!current.TryGetValue(id, out var upstream) || upstream != pump.Upstream)
                {
                    _pumps.Remove(id);
                    pump.Removed.Cancel();
                }
            }

            foreach (var upstream in current.Values.Where(u => !_pumps.ContainsKey(u.UpstreamId)))
            {
                var pump = new Pump(upstream, new CancellationTokenSource());
                var previous = _tasks.GetValueOrDefault(upstream.UpstreamId) ?? Task.CompletedTask;
                _pumps[upstream.UpstreamId] = pump;
                _tasks[upstream.UpstreamId] = Task.Run(() => RunAsync(pump, previous));
            }
        }
    }

    private async Task RunAsync(Pump pump, Task previous)
    {
        var id = pump.Upstream.UpstreamId;
        try
        {
            // The previous registration of this id gives its lease up first.
            await previous.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await HoldAndPumpAsync(pump.Upstream, pump.Removed.Token);
        }
        finally
        {
            lock (_lock)
            {
                if (!_pumps.ContainsKey(id))
                {
                    _tasks.Remove(id);
                    state.Remove(id);
                }
            }
        }
    }

    private async Task HoldAndPumpAsync(OpencodeClient upstream, CancellationToken removed)
    {
        var id = upstream.UpstreamId;
        var pump = new UpstreamEventPump(upstream, options.Value, sink, state, httpClients, metrics, time, logger);
        using var running = CancellationTokenSource.CreateLinkedTokenSource(_stopping, removed);
        while (!running.IsCancellationRequested)
        {
            IUpstreamLease lease;
            try
            {
                lease = await leases.AcquireAsync(id, running.Token);
            }
            catch (OperationCanceledException) when (running.IsCancellationRequested)
            {
                return;
            }

            await using (lease)
            {
                state.SetLease(id, lease);
                using var reading = CancellationTokenSource.CreateLinkedTokenSource(running.Token, lease.Lost, lease.HandOver);
                await pump.RunAsync(lease.Value, reading.Token);
                state.SetLease(id, null);
                if (lease.Lost.IsCancellationRequested)
                {
                    StreamingLog.LeaseLost(logger, id, lease.Value);
                }
                else if (removed.IsCancellationRequested && !_stopping.IsCancellationRequested)
                {
                    // Told under the lease, fenced like every write; then no node takes the lease while others learn of it.
                    await sink.OnUpstreamRemovedAsync(id, lease.Value, CancellationToken.None);
                    await lease.RetireAsync(RetireQuarantine);
                    StreamingLog.UpstreamRemoved(logger, id, lease.Value);
                }
                else if (lease.HandOver.IsCancellationRequested)
                {
                    StreamingLog.HandedOver(logger, id, lease.Value);
                }
            }
        }
    }
}
