using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;
using OpencodeGateway.Upstreams.Internal;
using Polly;

namespace OpencodeGateway.Upstreams;

public static class UpstreamsServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Upstreams</c> (validated at start), the <see cref="UpstreamRegistry"/> and, through
    /// <c>IHttpClientFactory</c>, two named clients per configured upstream: its REST client
    /// (<see cref="UpstreamHttpClients.Rest"/>: <c>RequestTimeout</c>, <c>ConnectTimeout</c>, retries of idempotent
    /// reads, a circuit breaker of its own) and its event-stream client (<see cref="UpstreamHttpClients.EventStream"/>:
    /// <c>ConnectTimeout</c> only; the pump has its own stall detection and backoff).
    /// </summary>
    public static IServiceCollection AddUpstreams(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<UpstreamsOptions>()
            .Configure(o => configuration.GetSection(UpstreamsOptions.SectionName).Bind(o.Upstreams))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<UpstreamsOptions>, UpstreamsOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<HttpClientFactoryOptions>, UpstreamHttpClientSetup>());
        // One pipeline per upstream, kept by the registry: its circuit state outlives the factory's handler rotation.
        services.AddResiliencePipelines<string>(context =>
        {
            foreach (var upstream in context.ServiceProvider.GetRequiredService<IOptions<UpstreamsOptions>>().Value.Upstreams)
            {
                context.AddResiliencePipeline<HttpResponseMessage>(UpstreamHttpClients.Rest(upstream.Id), (builder, pipeline) =>
                    UpstreamHttpClients.ConfigureRestPipeline(builder, pipeline.ServiceProvider.GetRequiredService<TimeProvider>()));
            }
        });
        services.TryAddSingleton<UpstreamRegistry>();
        return services;
    }
}
