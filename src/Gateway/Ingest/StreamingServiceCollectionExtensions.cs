using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Leases;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Ingest;

public static class StreamingServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Streaming</c> (validated at start) and one event pump per upstream, run under the registered
    /// <see cref="IUpstreamLeases"/>, which hands what it reads to the registered <see cref="IUpstreamEventSink"/>.
    /// </summary>
    public static IServiceCollection AddUpstreamStreaming(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StreamingOptions>().Bind(configuration.GetSection(StreamingOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StreamingOptions>, StreamingOptionsValidator>());
        services.TryAddSingleton(sp =>
        {
            var state = new UpstreamStreamState();
            var upstreams = sp.GetRequiredService<IOptions<UpstreamsOptions>>().Value.Upstreams.Select(u => u.Id).ToList();
            var metrics = sp.GetRequiredService<GatewayMetrics>();
            metrics.ObserveUpstreamLeases(() => upstreams.Select(id => (id, state.LeaseToken(id))));
            metrics.ObserveUpstreamStreams(() => upstreams.Select(id => (id, state.IsConnected(id))));
            return state;
        });
        services.AddHostedService<EventPumpService>();
        return services;
    }
}
