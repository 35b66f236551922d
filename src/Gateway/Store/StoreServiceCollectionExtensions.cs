using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Store.Internal;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Store;

public static class StoreServiceCollectionExtensions
{
    /// <summary>
    /// Adds the session store (<c>Gateway:Store</c>, <c>ConnectionStrings:Gateway</c>), which also keeps the upstreams
    /// registered at run time (<see cref="IUpstreamStore"/>), the start-up step that migrates it before the app serves,
    /// and its readiness check.
    /// </summary>
    public static IServiceCollection AddGatewayStore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StoreOptions>()
            .Bind(configuration.GetSection(StoreOptions.SectionName))
            .Configure<IHostEnvironment>((o, env) =>
            {
                o.NamedConnectionString = configuration.GetConnectionString("Gateway");
                o.SharedByNodes = !string.IsNullOrWhiteSpace(configuration.GetConnectionString("Redis"));
                o.ContentRoot = env.ContentRootPath;
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StoreOptions>, StoreOptionsValidator>());
        services.TryAddSingleton(sp => CreateStore(sp.GetRequiredService<IOptions<StoreOptions>>().Value));
        services.TryAddSingleton<ISessionStore>(sp => sp.GetRequiredService<SqlSessionStore>());
        // The upstreams registered at run time live in the same database.
        services.TryAddSingleton<IUpstreamStore>(sp => sp.GetRequiredService<SqlSessionStore>());
        services.AddHostedService<StoreMigrationService>();
        services.AddHealthChecks().AddCheck<StoreHealthCheck>("store", tags: [HealthTags.Ready]);
        return services;
    }

    internal static SqlSessionStore CreateStore(StoreOptions options) => options.ResolvedProvider switch
    {
        StoreProviders.Postgres => new PostgresSessionStore(NpgsqlDataSource.Create(options.EffectiveConnectionString!)),
        _ => new SqliteSessionStore(options.ResolvedSqliteConnectionString),
    };
}

/// <summary>Migrates the store in the host's "starting" phase: before any hosted service starts and the server listens.</summary>
internal sealed class StoreMigrationService(ISessionStore store, ILogger<StoreMigrationService> logger) : IHostedLifecycleService
{
    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        var applied = await store.MigrateAsync(cancellationToken);
        StoreLog.StoreMigrated(logger, store.Provider, applied.Count, string.Join(",", applied));
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
