using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpencodeGateway.Streaming;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Health;

/// <summary>Ready when every upstream's event stream is connected.</summary>
internal sealed class UpstreamStreamHealthCheck(IOptions<UpstreamsOptions> options, UpstreamStreamState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var streams = state.Snapshot();
        var data = new Dictionary<string, object>();
        var down = new List<string>();
        foreach (var upstream in options.Value.Upstreams)
        {
            streams.TryGetValue(upstream.Id, out var entry);
            data[upstream.Id] = new
            {
                connected = entry?.Connected ?? false,
                since = entry?.Since,
                reconnects = entry?.Reconnects ?? 0,
                lastError = entry?.LastError,
            };
            if (entry is not { Connected: true })
            {
                down.Add(upstream.Id);
            }
        }

        return Task.FromResult(down.Count == 0
            ? HealthCheckResult.Healthy("Every upstream event stream is connected.", data)
            : HealthCheckResult.Unhealthy($"Event stream not connected: {string.Join(", ", down)}.", data: data));
    }
}
