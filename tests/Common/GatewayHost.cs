using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Testing;

/// <summary>The real gateway on a loopback port, in this process, with configuration given as key/value pairs.</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private GatewayHost(WebApplication app, Uri baseUrl)
    {
        App = app;
        BaseUrl = baseUrl;
    }

    public WebApplication App { get; }
    public Uri BaseUrl { get; }
    public Uri HubUrl => new(BaseUrl, "hubs/session");
    public IServiceProvider Services => App.Services;

    public static Task<GatewayHost> StartAsync(Uri upstream, params (string Key, string Value)[] settings) =>
        StartAsync(upstream, configure: null, settings);

    public static async Task<GatewayHost> StartAsync(Uri upstream, Action<WebApplicationBuilder>? configure,
        params (string Key, string Value)[] settings)
    {
        var args = new List<string> { "--urls", "http://127.0.0.1:0", "--Gateway:Upstreams:0:Id=local", $"--Gateway:Upstreams:0:BaseUrl={upstream}" };
        args.AddRange(settings.Select(s => $"--{s.Key}={s.Value}"));
        var app = GatewayApplication.Build([.. args], builder =>
        {
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            configure?.Invoke(builder);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new GatewayHost(app, new Uri(address.EndsWith('/') ? address : address + "/"));
    }

    public T Get<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
