using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Leases;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Ingest;

public static class StreamingServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Streaming</c> (validated at start) and one event pump per upstream of the registry (following its
    /// changes), run under the registered <see cref="IUpstreamLeases"/>, which hands what it reads to the registered
    /// <see cref="IUpstreamEventSink"/>.
    /// </summary>
    public static IServiceCollection AddUpstreamStreaming(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StreamingOptions>().Bind(configuration.GetSection(StreamingOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StreamingOptions>, StreamingOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var state = new UpstreamStreamState();
            var registry = sp.GetRequiredService<UpstreamRegistry>();
            var metrics = sp.GetRequiredService<GatewayMetrics>();
            metrics.ObserveUpstreamLeases(() => registry.All.Select(u => (u.UpstreamId, state.LeaseToken(u.UpstreamId))));
            metrics.ObserveUpstreamStreams(() => registry.All.Select(u => (u.UpstreamId, state.IsConnected(u.UpstreamId))));
            return state;
        });
        services.AddHostedService<EventPumpService>();
        return services;
    }
}
