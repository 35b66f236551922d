using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpencodeGateway.Leases;
using OpencodeGateway.Sessions.History;
using OpencodeGateway.Streaming;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Health;

/// <summary>
/// Ready when every upstream's event stream is read: by this node on a single node; in a cluster by whichever node
/// holds its lease. The data names the holder and its fencing token, and this node's own reading when it is the holder.
/// </summary>
internal sealed class UpstreamStreamHealthCheck(IOptions<UpstreamsOptions> options, UpstreamStreamState state, IUpstreamLeases leases,
    ISessionHistory history) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var streams = state.Snapshot();
        var data = new Dictionary<string, object>();
        var down = new List<string>();
        foreach (var upstream in options.Value.Upstreams)
        {
            streams.TryGetValue(upstream.Id, out var local);
            string? holder = null, stream = null;
            try
            {
                holder = await leases.HolderAsync(upstream.Id, cancellationToken);
                stream = await history.ConnectedStreamAsync(upstream.Id, cancellationToken);
            }
            catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
            {
                // The cluster's view is unknown while Redis does not answer (its own check says so).
            }

            var connected = stream is not null;
            data[upstream.Id] = new
            {
                connected,
                holder = holder?.Split('|')[0],
                fencingToken = holder is { } h && long.TryParse(h.Split('|').ElementAtOrDefault(1), out var token) ? token : (long?)null,
                heldHere = local?.Lease is not null,
                since = local?.Lease is not null ? local.Since : (DateTimeOffset?)null,
                reconnects = local?.Reconnects ?? 0,
                lastError = local?.LastError,
            };
            if (!connected)
            {
                down.Add(upstream.Id);
            }
        }

        return down.Count == 0
            ? HealthCheckResult.Healthy("Every upstream's event stream is read.", data)
            : HealthCheckResult.Unhealthy($"Event stream not read: {string.Join(", ", down)}.", data: data);
    }
}
