using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;
using OpencodeGateway.Upstreams.Internal;

namespace OpencodeGateway.Upstreams;

public static class UpstreamsServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Upstreams</c> and <c>Gateway:UpstreamRegistry</c> (validated at start), the
    /// <see cref="UpstreamRegistry"/> with the upstreams registered at run time (<see cref="UpstreamRegistrations"/>, which
    /// needs the store's <see cref="IUpstreamStore"/>) and, through <c>IHttpClientFactory</c>, two named clients per
    /// upstream: its REST client (<see cref="UpstreamHttpClients.Rest"/>: <c>RequestTimeout</c>, <c>ConnectTimeout</c>,
    /// retries of idempotent reads, a circuit breaker of its own) and its event-stream client
    /// (<see cref="UpstreamHttpClients.EventStream"/>: <c>ConnectTimeout</c> only; the pump has its own stall detection
    /// and backoff).
    /// </summary>
    public static IServiceCollection AddUpstreams(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<UpstreamsOptions>()
            .Configure(o => configuration.GetSection(UpstreamsOptions.SectionName).Bind(o.Upstreams))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<UpstreamsOptions>, UpstreamsOptionsValidator>());
        services.AddOptions<UpstreamRegistryOptions>().Bind(configuration.GetSection(UpstreamRegistryOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<UpstreamRegistryOptions>, UpstreamRegistryOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient();
        services.TryAddSingleton<UpstreamEndpoints>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<HttpClientFactoryOptions>, UpstreamHttpClientSetup>());
        services.TryAddSingleton(sp => new UpstreamRegistry(sp.GetRequiredService<IOptions<UpstreamsOptions>>(),
            sp.GetRequiredService<IHttpClientFactory>(), sp.GetRequiredService<UpstreamEndpoints>(),
            sp.GetRequiredService<IOptionsMonitorCache<HttpClientFactoryOptions>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>()));
        services.TryAddSingleton<UpstreamSecrets>();
        services.TryAddSingleton<UpstreamRegistrations>();
        services.AddHostedService(sp => sp.GetRequiredService<UpstreamRegistrations>());
        return services;
    }
}
