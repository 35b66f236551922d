using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace OpencodeGateway.Health;

/// <summary>
/// Keeps the last result of each readiness check, run by ASP.NET Core's health check publisher every
/// <see cref="Period"/>, for <c>gateway.ready</c>: the metric says what <c>/readyz</c> would answer whether or not a
/// probe calls it, and a collection never waits on the store or Redis.
/// </summary>
internal sealed class ReadinessGauge : IHealthCheckPublisher
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(10);

    private volatile IReadOnlyList<(string Check, bool Healthy)> _last = [];

    public IReadOnlyList<(string Check, bool Healthy)> Last => _last;

    public Task PublishAsync(HealthReport report, CancellationToken cancellationToken)
    {
        _last = [.. report.Entries.Select(e => (e.Key, e.Value.Status == HealthStatus.Healthy))];
        return Task.CompletedTask;
    }
}
