using Microsoft.Extensions.Options;
using OpencodeGateway.Cors;

namespace OpencodeGateway;

/// <summary>Builds the gateway's web application; used by <c>Program</c> and by tests that host it on a real port.</summary>
public static class GatewayApplication
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        // SignalR logs every HubException a method throws as an error; ours are answers to bad calls, and the
        // error filter logs the unexpected failures itself.
        builder.Logging.AddFilter("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.Critical);
        builder.Services.AddOpencodeGateway(builder.Configuration);
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseGatewayCors(); // first: preflights answered, and refusals (503, 401) readable by other origins
        app.UseShutdownGate();
        if (app.Environment.WebRootPath is { } webRoot && Directory.Exists(webRoot))
        {
            // The demo chat UI (clients/demo builds it into wwwroot), served at "/".
            app.UseDefaultFiles();
            app.UseStaticFiles();
        }

        app.UseAuthentication();
        app.UseAuthorization();
        app.MapOpencodeGateway();
        return app;
    }

    /// <summary>Runs the gateway; a configuration error ends it with one line naming the key, and exit code 2.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        WebApplication app;
        try
        {
            app = Build(args);
            await app.StartAsync();
        }
        catch (OptionsValidationException e)
        {
            await Console.Error.WriteLineAsync($"Configuration error: {string.Join("; ", e.Failures)}");
            return 2;
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
}
