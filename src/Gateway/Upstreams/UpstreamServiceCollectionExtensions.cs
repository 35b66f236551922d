using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Registry;

namespace OpencodeGateway.Upstreams;

public static class UpstreamServiceCollectionExtensions
{
    /// <summary>
    /// Adds the <see cref="UpstreamRegistry"/> and, through <c>IHttpClientFactory</c>, two named clients per configured
    /// upstream: its REST client (<see cref="UpstreamHttpClients.Rest"/>: <c>RequestTimeout</c>, <c>ConnectTimeout</c>,
    /// retries of idempotent reads, a circuit breaker of its own) and its event-stream client
    /// (<see cref="UpstreamHttpClients.EventStream"/>: <c>ConnectTimeout</c> only; the pump has its own stall detection
    /// and backoff).
    /// </summary>
    public static IServiceCollection AddUpstreams(this IServiceCollection services)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<HttpClientFactoryOptions>, UpstreamHttpClientSetup>());
        // One pipeline per upstream, kept by the registry: its circuit state outlives the factory's handler rotation.
        services.AddResiliencePipelines<string>(context =>
        {
            foreach (var upstream in context.ServiceProvider.GetRequiredService<IOptions<GatewayOptions>>().Value.Upstreams)
            {
                context.AddResiliencePipeline<HttpResponseMessage>(UpstreamHttpClients.Rest(upstream.Id), (builder, pipeline) =>
                    UpstreamHttpClients.ConfigureRestPipeline(builder, pipeline.ServiceProvider.GetRequiredService<TimeProvider>()));
            }
        });
        services.TryAddSingleton<UpstreamRegistry>();
        return services;
    }
}

/// <summary>The named <c>HttpClient</c>s of the upstreams and the resilience of their REST calls.</summary>
public static class UpstreamHttpClients
{
    private const string RestPrefix = "opencode-rest:";
    private const string EventStreamPrefix = "opencode-events:";

    /// <summary>Retries of an idempotent read (GET) after a transient failure; nothing else is ever retried.</summary>
    public const int MaxReadRetries = 2;

    /// <summary>Attempts in 30 s before the circuit breaker judges an upstream (every retry is an attempt).</summary>
    public const int CircuitMinimumThroughput = 20;

    /// <summary>
    /// How long an open circuit answers at once. Short: after an opencode restart the event stream is back at once (its
    /// client has no breaker), and REST calls should follow within a moment.
    /// </summary>
    public static readonly TimeSpan CircuitBreakDuration = TimeSpan.FromSeconds(2);

    /// <summary>Name of the upstream's REST client.</summary>
    public static string Rest(string upstreamId) => RestPrefix + upstreamId;

    /// <summary>Name of the upstream's event-stream client (no timeout, no resilience pipeline).</summary>
    public static string EventStream(string upstreamId) => EventStreamPrefix + upstreamId;

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

    internal static bool TryParse(string name, out string upstreamId, out bool rest)
    {
        rest = name.StartsWith(RestPrefix, StringComparison.Ordinal);
        upstreamId = rest ? name[RestPrefix.Length..]
            : name.StartsWith(EventStreamPrefix, StringComparison.Ordinal) ? name[EventStreamPrefix.Length..]
            : "";
        return upstreamId.Length > 0;
    }
}

/// <summary>Configures the named clients of <see cref="UpstreamHttpClients"/> from <c>Gateway:Upstreams</c>.</summary>
internal sealed class UpstreamHttpClientSetup(IOptions<GatewayOptions> options) : IConfigureNamedOptions<HttpClientFactoryOptions>
{
    public void Configure(HttpClientFactoryOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, HttpClientFactoryOptions factoryOptions)
    {
        if (name is null || !UpstreamHttpClients.TryParse(name, out var upstreamId, out var rest)
            || options.Value.Upstreams.Find(u => u.Id == upstreamId) is not { } upstream)
        {
            return;
        }

        factoryOptions.HttpClientActions.Add(client =>
        {
            client.BaseAddress = new Uri(upstream.BaseUrl.EndsWith('/') ? upstream.BaseUrl : upstream.BaseUrl + "/");
            client.Timeout = rest ? upstream.RequestTimeout : Timeout.InfiniteTimeSpan;
            if (!string.IsNullOrEmpty(upstream.Password))
            {
                var user = string.IsNullOrEmpty(upstream.Username) ? "opencode" : upstream.Username;
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                    Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{upstream.Password}")));
            }
        });
        factoryOptions.HttpMessageHandlerBuilderActions.Add(builder =>
        {
            builder.PrimaryHandler = new SocketsHttpHandler
            {
                ConnectTimeout = upstream.ConnectTimeout,
                AutomaticDecompression = DecompressionMethods.None,
            };
            if (rest)
            {
                var pipelines = builder.Services.GetRequiredService<ResiliencePipelineProvider<string>>();
                builder.AdditionalHandlers.Add(new ResilienceHandler(pipelines.GetPipeline<HttpResponseMessage>(name)));
            }
        });
    }
}
