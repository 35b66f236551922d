using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Auth.Internal;

namespace OpencodeGateway.Auth;

public static class AuthServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Auth</c> (validated at start), the gateway's authentication scheme (JWT HS256, API keys, dev
    /// mode) as the default, and authorization whose default policy requires an authenticated caller.
    /// </summary>
    public static IServiceCollection AddGatewayAuth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayAuthOptions>()
            .Bind(configuration.GetSection(GatewayAuthOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayAuthOptions>, GatewayAuthOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<Hs256JwtValidator>();
        services.AddAuthentication(GatewayAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, GatewayAuthenticationHandler>(GatewayAuthenticationHandler.SchemeName, null);
        services.AddAuthorization();
        services.AddHostedService<DevModeWarning>();
        return services;
    }
}

/// <summary>Logs a warning at every start while dev mode is on.</summary>
internal sealed class DevModeWarning(IOptions<GatewayAuthOptions> options, ILogger<DevModeWarning> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.DevMode)
        {
            AuthLog.DevModeOn(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
