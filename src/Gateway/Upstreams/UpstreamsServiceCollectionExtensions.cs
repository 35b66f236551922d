using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Upstreams;

public static class UpstreamsServiceCollectionExtensions
{
    /// <summary>Adds <c>Gateway:Upstreams</c> (validated at start) and the REST client of each upstream.</summary>
    public static IServiceCollection AddUpstreams(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<UpstreamsOptions>()
            .Configure(o => configuration.GetSection(UpstreamsOptions.SectionName).Bind(o.Upstreams))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<UpstreamsOptions>, UpstreamsOptionsValidator>());
        services.TryAddSingleton<UpstreamRegistry>();
        return services;
    }
}
