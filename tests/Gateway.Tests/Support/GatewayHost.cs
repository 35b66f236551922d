using OpencodeGateway.Testing;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using OpencodeGateway;

namespace Gateway.Tests.Support;

/// <summary>
/// The gateway on a <see cref="TestServer"/>, in front of a <see cref="FakeOpencode"/>, with a SQLite store in a temp
/// folder and <see cref="TestTokens.DevSigningKey"/> as signing key (environment "Testing", dev mode off).
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _dataDirectory;
    private bool _started;

    private GatewayHost(WebApplication app, FakeOpencode upstream, string dataDirectory)
    {
        _app = app;
        Upstream = upstream;
        _dataDirectory = dataDirectory;
        Server = app.GetTestServer();
    }

    public TestServer Server { get; }
    public FakeOpencode Upstream { get; }
    public IServiceProvider Services => _app.Services;

    public static async Task<GatewayHost> StartAsync(Action<WebApplicationBuilder>? configure = null,
        IDictionary<string, string?>? settings = null, string environment = "Testing")
    {
        var upstream = await FakeOpencode.StartAsync();
        var dataDirectory = Path.Combine(Path.GetTempPath(), "gw-host-" + Guid.NewGuid().ToString("N"));
        var config = new Dictionary<string, string?>
        {
            ["Gateway:Upstreams:0:Id"] = "local",
            ["Gateway:Upstreams:0:BaseUrl"] = upstream.BaseUrl,
            ["Gateway:Store:DataDirectory"] = dataDirectory,
            ["Gateway:Auth:Jwt:SigningKey"] = TestTokens.DevSigningKey,
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        try
        {
            var app = GatewayApplication.Build([$"--environment={environment}"], builder =>
            {
                builder.WebHost.UseTestServer();
                builder.Configuration.AddInMemoryCollection(config);
                configure?.Invoke(builder);
            });
            var host = new GatewayHost(app, upstream, dataDirectory);
            try
            {
                await app.StartAsync();
                host._started = true;
                await host.WaitForUpstreamStreamAsync();
            }
            catch
            {
                await host.DisposeAsync();
                throw;
            }

            return host;
        }
        catch
        {
            await upstream.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits until the gateway holds its event subscription, so emitted events reach it.</summary>
    private async Task WaitForUpstreamStreamAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Upstream.Subscribers == 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("The gateway did not subscribe to the fake upstream's events.");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>An HTTP client authenticated as <paramref name="userId"/> (Bearer token), or anonymous when null.</summary>
    public HttpClient Client(string? userId, params string[] workspaces)
    {
        var client = Server.CreateClient();
        if (userId is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TestTokens.Mint(userId, workspaces));
        }

        return client;
    }

    public HttpClient ApiKeyClient(string key)
    {
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    public Task<HubTestClient> ConnectHubAsync(string userId, params string[] workspaces) =>
        HubTestClient.ConnectAsync(Server, TestTokens.Mint(userId, workspaces));

    public async ValueTask DisposeAsync()
    {
        if (_started)
        {
            await _app.StopAsync();
        }

        await _app.DisposeAsync();
        await Upstream.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // nothing was written
        }
    }
}
