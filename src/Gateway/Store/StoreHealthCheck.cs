using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Store;

/// <summary>Ready when the session store answers a <c>SELECT 1</c> within the check's time.</summary>
internal sealed class StoreHealthCheck(ISessionStore store) : IHealthCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            await store.PingAsync(timeout.Token);
            return HealthCheckResult.Healthy($"The {store.Provider} session store answers.");
        }
        catch (Exception e) when (DependencyFailures.IsUnavailable(e) || e is System.Data.Common.DbException
                                      || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return HealthCheckResult.Unhealthy($"The {store.Provider} session store does not answer.");
        }
    }
}
