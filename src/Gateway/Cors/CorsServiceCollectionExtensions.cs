using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Cors;

public static class CorsServiceCollectionExtensions
{
    /// <summary>The policy applied to <c>/hubs/*</c> and <c>/api/*</c>.</summary>
    public const string PolicyName = "gateway";

    /// <summary>
    /// Adds <c>Gateway:Cors</c> (validated at start) and the CORS policy built from it: the listed origins, any
    /// request header (the bearer token, <c>X-Api-Key</c>, SignalR's and the AI SDK's own), the API's methods,
    /// credentials when <see cref="GatewayCorsOptions.AllowCredentials"/>, and a cached preflight.
    /// </summary>
    public static IServiceCollection AddGatewayCors(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection(GatewayCorsOptions.SectionName);
        services.AddOptions<GatewayCorsOptions>()
            .Bind(section)
            .Configure(o => o.AllowedOriginsValue = section.GetSection(nameof(GatewayCorsOptions.AllowedOrigins)).Value)
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<GatewayCorsOptions>, GatewayCorsOptionsValidator>());
        services.AddCors();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureOptions<CorsOptions>, ConfigureGatewayCorsPolicy>());
        return services;
    }

    /// <summary>
    /// Applies the policy to <c>/hubs/*</c> and <c>/api/*</c>: answers their preflights and adds the headers to their
    /// responses, also to refusals (401, 503 from the shutdown gate) so a page can read them. Call it before
    /// <c>UseAdmissionGate</c> and <c>UseAuthentication</c>. Does nothing while no origin is configured.
    /// </summary>
    public static IApplicationBuilder UseGatewayCors(this IApplicationBuilder app)
    {
        if (app.ApplicationServices.GetRequiredService<IOptions<GatewayCorsOptions>>().Value.EffectiveOrigins.Count == 0)
        {
            return app;
        }

        return app.UseWhen(
            static context => context.Request.Path.StartsWithSegments("/hubs") || context.Request.Path.StartsWithSegments("/api"),
            static branch => branch.UseCors(PolicyName));
    }

    private sealed class ConfigureGatewayCorsPolicy(IOptions<GatewayCorsOptions> options) : IConfigureOptions<CorsOptions>
    {
        public void Configure(CorsOptions cors)
        {
            var settings = options.Value;
            cors.AddPolicy(PolicyName, policy =>
            {
                if (settings.AllowsAnyOrigin)
                {
                    policy.AllowAnyOrigin();
                }
                else
                {
                    policy.WithOrigins([.. settings.EffectiveOrigins]);
                }

                if (settings.AllowCredentials)
                {
                    policy.AllowCredentials();
                }

                policy.WithMethods(HttpMethods.Get, HttpMethods.Post, HttpMethods.Patch, HttpMethods.Delete)
                    .AllowAnyHeader()
                    // Readable by the page: where a created session is, when to retry, the AI SDK's stream marker.
                    .WithExposedHeaders("Location", "Retry-After", "x-vercel-ai-ui-message-stream", "x-opencode-earlier")
                    .SetPreflightMaxAge(settings.PreflightMaxAge);
            });
        }
    }
}
