using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace OpencodeGateway.Cluster;

/// <summary>Ready when this node reaches the cluster's Redis (a PING within the operation timeout).</summary>
internal sealed class RedisHealthCheck(RedisConnection redis) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!redis.IsConnected)
        {
            return HealthCheckResult.Unhealthy("Redis is unreachable.");
        }

        try
        {
            var latency = await redis.Database.PingAsync();
            return HealthCheckResult.Healthy($"Redis answers ({latency.TotalMilliseconds:0.#} ms).",
                new Dictionary<string, object> { ["nodeId"] = redis.NodeId, ["latencyMs"] = latency.TotalMilliseconds });
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy($"Redis does not answer: {e.Message}");
        }
    }
}
