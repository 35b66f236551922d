using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Snapshots;

public static class SnapshotsServiceCollectionExtensions
{
    /// <summary>Adds <c>Gateway:Snapshots</c> (validated at start) and the snapshot builder with its REST cache.</summary>
    public static IServiceCollection AddSnapshots(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SnapshotOptions>().Bind(configuration.GetSection(SnapshotOptions.SectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SnapshotOptions>, SnapshotOptionsValidator>());
        services.TryAddSingleton<SnapshotBaseCache>();
        services.TryAddSingleton<SnapshotService>();
        return services;
    }
}
