using Microsoft.AspNetCore.SignalR.Client;

namespace OpencodeGateway.Client.Internal;

/// <summary>
/// Retries for ever: the configured delays in turn, then the last one again, each but a zero delay spread ±20 % so that
/// many clients dropped at once by one node do not come back at once.
/// </summary>
internal sealed class ReconnectPolicy(IReadOnlyList<TimeSpan> delays) : IRetryPolicy
{
    public TimeSpan? NextRetryDelay(RetryContext retryContext) => Delay(delays, retryContext.PreviousRetryCount);

    /// <summary>The delay before retry number <paramref name="attempt"/> (0-based).</summary>
    public static TimeSpan Delay(IReadOnlyList<TimeSpan> delays, long attempt)
    {
        var delay = delays[(int)Math.Min(attempt, delays.Count - 1)];
        return delay == TimeSpan.Zero ? delay : delay * (0.8 + 0.4 * Random.Shared.NextDouble());
    }
}
