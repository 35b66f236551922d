using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpencodeGateway.Auth.Internal;

namespace OpencodeGateway.Auth;

public static class AuthServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>Gateway:Auth</c> (validated at start, with <c>Authentication:Schemes:Bearer</c>), the gateway's
    /// authentication as the default scheme (a policy scheme forwarding to JwtBearer for shared-secret or identity-provider
    /// tokens, or to the API-key / dev-mode handler), and authorization whose default policy requires an authenticated caller.
    /// </summary>
    public static IServiceCollection AddGatewayAuth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayAuthOptions>()
            .Bind(configuration.GetSection(GatewayAuthOptions.SectionName))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayAuthOptions>, GatewayAuthOptionsValidator>());
        services.TryAddSingleton<GatewaySchemeSelector>();
        services.TryAddSingleton<GatewayJwtBearerEvents>();
        services.AddAuthentication(GatewayAuthenticationSchemes.Default)
            .AddPolicyScheme(GatewayAuthenticationSchemes.Default, "Gateway", o => o.ForwardDefaultSelector =
                context => context.RequestServices.GetRequiredService<GatewaySchemeSelector>().Select(context))
            .AddJwtBearer(GatewayAuthenticationSchemes.SharedSecret)
            // Bound by ASP.NET Core from Authentication:Schemes:Bearer (Authority, ValidAudiences, ValidIssuer, …).
            .AddJwtBearer(GatewayAuthenticationSchemes.IdentityProvider)
            .AddScheme<AuthenticationSchemeOptions, GatewayCredentialsHandler>(GatewayAuthenticationSchemes.Credentials, null);
        // After JwtBearer's own post-configuration, which creates the identity provider's configuration manager.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<JwtBearerOptions>, JwtBearerSchemesSetup>());
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
            AuthenticationLog.DevModeOn(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
