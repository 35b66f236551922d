using Microsoft.Extensions.Options;
using OpencodeGateway.Auth;
using OpencodeGateway.Cors;
using OpencodeGateway.Health;
using OpencodeGateway.Hubs;
using OpencodeGateway.Limits;
using OpencodeGateway.Delivery;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway;

/// <summary>Builds the gateway's web application; used by <c>Program</c> and by tests that host it on a real port.</summary>
public static class GatewayApplication
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        if (builder.Configuration[$"{ManagementOptions.SectionName}:Urls"] is { Length: > 0 } management)
        {
            // The internals get listeners of their own, beside the public ones (which UseUrls would otherwise replace).
            builder.WebHost.UseUrls(ManagementOptions.ListenUrls(builder.Configuration, management));
        }

        // SignalR logs every HubException a method throws as an error; ours are answers to bad calls, and the
        // error filter logs the unexpected failures itself.
        builder.Logging.AddFilter("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.Critical);
        builder.Services.AddOpencodeGateway(builder.Configuration);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.UseReceiveClocks());
        builder.WebHost.UseBoundedSocketSendBuffers(builder.Configuration);
        configure?.Invoke(builder);
        var app = builder.Build();
        // Before anything below resolves services that log (mapping the hub does): a bad setting ends here, silently.
        ValidateConfiguration(app.Services);
        app.UseForwardedClientAddress();
        app.UseGatewayCors(); // before the rest: preflights answered, and refusals (503, 401) readable by other origins
        app.UseAdmissionGate();
        if (app.Environment.WebRootPath is { } webRoot && Directory.Exists(webRoot))
        {
            // The demo chat UI (clients/demo builds it into wwwroot), served at "/".
            app.UseDefaultFiles();
            app.UseStaticFiles();
        }

        app.UseSilentHubConnectionWatch();
        app.UseAuthentication();
        app.UseAuthFailureThrottle();
        app.UseHubConnectionLimit("/hubs");
        app.UseManagementAccess();
        app.UseAuthorization();
        app.MapOpencodeGateway();
        return app;
    }

    /// <summary>
    /// Runs the gateway. A configuration error ends it before the host starts, so nothing else is logged whatever the
    /// log levels: one line naming the key(s) on stderr, and exit code 2.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        WebApplication app;
        try
        {
            app = Build(args);
        }
        catch (Exception e) when (ConfigurationErrorOf(e) is { } error)
        {
            await Console.Error.WriteLineAsync($"Configuration error: {error}");
            return 2;
        }

        try
        {
            await app.StartAsync();
        }
        catch (System.Data.Common.DbException e)
        {
            await Console.Error.WriteLineAsync($"Session store error (Gateway:Store / ConnectionStrings:Gateway): {e.Message}");
            return 3;
        }

        await app.WaitForShutdownAsync();
        await app.DisposeAsync();
        return 0;
    }

    /// <summary>
    /// Binds and validates every option registered with <c>ValidateOnStart</c>, as the host would at its start (it
    /// then finds them validated), but before the host logs anything.
    /// </summary>
    public static void ValidateConfiguration(IServiceProvider services)
    {
        var configuration = services.GetRequiredService<IConfiguration>();
        // The binder silently drops a list element it cannot convert, which would surface as a misleading "missing"
        // error: bind each element alone first, so that the binder's own message names the key.
        BindEachElement<UpstreamOptions>(configuration.GetSection(UpstreamsOptions.SectionName));
        BindEachElement<ApiKeyOptions>(configuration.GetSection($"{GatewayAuthOptions.SectionName}:ApiKeys"));
        services.GetService<IStartupValidator>()?.Validate();
    }

    private static void BindEachElement<T>(IConfigurationSection list)
    {
        foreach (var element in list.GetChildren())
        {
            element.Get<T>();
        }
    }

    /// <summary>The one-line message of a configuration error (validation or binding); null for any other exception.</summary>
    internal static string? ConfigurationErrorOf(Exception e) => e switch
    {
        OptionsValidationException validation => string.Join("; ", validation.Failures),
        AggregateException aggregate when aggregate.InnerExceptions.All(i => ConfigurationErrorOf(i) is not null) =>
            string.Join("; ", aggregate.InnerExceptions.Select(i => ConfigurationErrorOf(i))),
        // ConfigurationBinder: "Failed to convert configuration value 'x' at 'Gateway:…' to type '…'."
        InvalidOperationException { Source: "Microsoft.Extensions.Configuration.Binder" } binding => binding.Message,
        _ => null,
    };
}
