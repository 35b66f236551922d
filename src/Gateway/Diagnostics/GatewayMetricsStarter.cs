
namespace OpencodeGateway.Diagnostics;

/// <summary>
/// Starts <see cref="GatewayMetrics"/>' zero series (<see cref="GatewayMetrics.StartSeries"/>) once the meter provider
/// listens: OpenTelemetry builds it in the hosted service <c>AddOpenTelemetry</c> registers first, so this one, registered
/// after it, starts after it.
/// </summary>
internal sealed class GatewayMetricsStarter(GatewayMetrics metrics) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        metrics.StartSeries();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
