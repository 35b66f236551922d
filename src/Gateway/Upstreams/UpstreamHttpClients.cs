using Microsoft.Extensions.Http.Resilience;
using Polly;

namespace OpencodeGateway.Upstreams;

/// <summary>
/// The named <c>HttpClient</c>s of the upstreams and the resilience of their REST calls. Each upstream the registry
/// holds has two names of its own, <c>opencode-rest:{id}#{n}</c> and <c>opencode-events:{id}#{n}</c>, with a number
/// new at every registration: an upstream removed and registered again at another address never gets the handlers
/// (connections, circuit) of the one before.
/// </summary>
public static class UpstreamHttpClients
{

    /// <summary>Retries of an idempotent read (GET) after a transient failure; nothing else is ever retried.</summary>
    public const int MaxReadRetries = 2;

    /// <summary>Attempts in 30 s before the circuit breaker judges an upstream (every retry is an attempt).</summary>
    public const int CircuitMinimumThroughput = 20;

    /// <summary>
    /// How long an open circuit answers at once. Short: after an opencode restart the event stream is back at once (its
    /// client has no breaker), and REST calls should follow within a moment.
    /// </summary>
    public static readonly TimeSpan CircuitBreakDuration = TimeSpan.FromSeconds(2);

    /// <summary>Name of the REST client of an upstream's <paramref name="registration"/>.</summary>
    internal static string Rest(string upstreamId, long registration) => $"opencode-rest:{upstreamId}#{registration}";

    /// <summary>Name of the event-stream client (no timeout, no resilience pipeline) of an upstream's <paramref name="registration"/>.</summary>
    internal static string EventStream(string upstreamId, long registration) => $"opencode-events:{upstreamId}#{registration}";

    /// <summary>
    /// Retries transient failures (connection refused or reset, 408, 429, 5xx) of GETs only, twice, with exponential
    /// backoff and jitter, within the call's <c>RequestTimeout</c>; never a prompt, abort, permission reply, create,
    /// PATCH or DELETE. Then a circuit breaker: when at least half of at least <see cref="CircuitMinimumThroughput"/>
    /// attempts in 30 s failed transiently, calls fail at once (<c>upstream_unavailable</c>) for
    /// <see cref="CircuitBreakDuration"/> before one is let through to probe.
    /// </summary>
    internal static void ConfigureRestPipeline(ResiliencePipelineBuilder<HttpResponseMessage> builder, TimeProvider time)
    {
        builder.TimeProvider = time;
        var retry = new HttpRetryStrategyOptions
        {
            MaxRetryAttempts = MaxReadRetries,
            Delay = TimeSpan.FromMilliseconds(200),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
        };
        retry.DisableForUnsafeHttpMethods();
        builder
            .AddRetry(retry)
            .AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = CircuitMinimumThroughput,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = CircuitBreakDuration,
            });
    }
}
