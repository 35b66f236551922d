using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Testing;

/// <summary>What a <see cref="GatewayHost"/> runs: upstream, settings, environment, clock.</summary>
public sealed class GatewayHostOptions
{
    /// <summary>The opencode server (the real one, or a port where nothing answers). Null: the host starts its own <see cref="FakeOpencode"/>.</summary>
    public Uri? Upstream { get; init; }

    /// <summary>Configuration on top of the host's defaults (key → value; a null value removes the key).</summary>
    public Dictionary<string, string?> Settings { get; init; } = [];

    public string Environment { get; init; } = "Testing";

    /// <summary>The gateway's clock, e.g. a <c>FakeTimeProvider</c> the test advances.</summary>
    public TimeProvider? Time { get; init; }

    /// <summary>Wait at start until the gateway is ready and reads every upstream's event stream.</summary>
    public bool WaitUntilReady { get; init; } = true;


    /// <summary>Last changes to the builder (services, Kestrel, logging).</summary>
    public Action<WebApplicationBuilder>? Configure { get; init; }
}

/// <summary>
/// The real gateway (<see cref="GatewayApplication.Build"/>) in this process, on Kestrel on a free loopback port, so
/// every client talks to it as in production: HTTP, SignalR negotiate and WebSockets over TCP (backpressure, close,
/// shutdown included). Its own SQLite store in a temporary folder, tokens signed with
/// <see cref="TestTokens.DevSigningKey"/>, and one admin API key (<see cref="AdminApiKey"/>).
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    public const string AdminApiKey = "test-admin-api-key";
    private readonly string _dataDirectory;
    private readonly FakeOpencode? _ownUpstream;
    private bool _started;
    private int _disposed;

    private GatewayHost(WebApplication app, string dataDirectory, FakeOpencode? ownUpstream)
    {
        App = app;
        _dataDirectory = dataDirectory;
        _ownUpstream = ownUpstream;
    }

    public WebApplication App { get; }
    public Uri BaseUrl { get; private set; } = null!;
    public Uri HubUrl => new(BaseUrl, "hubs/session");
    public IServiceProvider Services => App.Services;

    /// <summary>The fake opencode the host started (when <see cref="GatewayHostOptions.Upstream"/> was null).</summary>
    public FakeOpencode Upstream => _ownUpstream ?? throw new InvalidOperationException("This gateway runs in front of an upstream the test gave it.");

    /// <summary>The gateway in front of <paramref name="upstream"/>, with these settings.</summary>
    public static Task<GatewayHost> StartAsync(Uri upstream, params (string Key, string Value)[] settings) =>
        StartAsync(new GatewayHostOptions { Upstream = upstream, Settings = settings.ToDictionary(s => s.Key, s => (string?)s.Value) });

    public static async Task<GatewayHost> StartAsync(GatewayHostOptions? options = null)
    {
        options ??= new GatewayHostOptions();
        var ownUpstream = options.Upstream is null ? await FakeOpencode.StartAsync() : null;
        var data = Directory.CreateTempSubdirectory("gateway-test-").FullName;
        var config = new Dictionary<string, string?>
        {
            ["Gateway:Upstreams:0:Id"] = "local",
            ["Gateway:Upstreams:0:BaseUrl"] = (options.Upstream ?? ownUpstream!.BaseUrl).ToString(),
            ["Gateway:Store:DataDirectory"] = data,
            ["Gateway:Auth:Jwt:SigningKey"] = TestTokens.DevSigningKey,
            ["Gateway:Auth:ApiKeys:0:KeyHash"] = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(AdminApiKey))),
            ["Gateway:Auth:ApiKeys:0:Admin"] = "true",
            ["Gateway:Auth:ApiKeys:0:Name"] = "tests",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in options.Settings)
        {
            config[key] = value;
        }

        GatewayHost? host = null;
        try
        {
            // Settings as command-line arguments: like production's, they are there when the gateway composes itself
            // (cluster mode and OTLP export are decided then).
            string[] args = [$"--environment={options.Environment}", "--urls=http://127.0.0.1:0",
                .. config.Where(c => c.Value is not null).Select(c => $"--{c.Key}={c.Value}")];
            var app = GatewayApplication.Build(args, builder =>
            {
                builder.Logging.ClearProviders();
                builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
                builder.Logging.SetMinimumLevel(LogLevel.Warning);
                if (options.Time is { } time)
                {
                    builder.Services.AddSingleton(time);
                }

                options.Configure?.Invoke(builder);
            });
            host = new GatewayHost(app, data, ownUpstream);
            await app.StartAsync();
            host._started = true;
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            host.BaseUrl = new Uri(address.EndsWith('/') ? address : address + "/");
            if (options.WaitUntilReady)
            {
                await host.WaitUntilReadyAsync();
            }

            return host;
        }
        catch
        {
            if (host is not null)
            {
                await host.DisposeAsync();
            }
            else
            {
                await DeleteAsync(data, ownUpstream);
            }

            throw;
        }
    }

    /// <summary>
    /// Waits until <c>/readyz</c> answers 200 and <c>GET /api/upstreams</c> says every upstream's event stream is read.
    /// </summary>
    public async Task WaitUntilReadyAsync()
    {
        using var http = ApiKeyClient(AdminApiKey);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await http.GetAsync("readyz")).StatusCode != HttpStatusCode.OK || !await UpstreamsConnectedAsync(http))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The gateway did not connect to its upstream's event stream: {await http.GetStringAsync("api/upstreams")}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Whether <c>GET /api/upstreams</c> says every upstream's event stream is read (by this node or another).</summary>
    public static async Task<bool> UpstreamsConnectedAsync(HttpClient admin)
    {
        using var response = await admin.GetAsync("api/upstreams");
        return response.IsSuccessStatusCode
            && (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<System.Text.Json.JsonElement>(response.Content))
                .EnumerateArray().All(u => u.GetProperty("connected").GetBoolean());
    }

    /// <summary>A token for <paramref name="userId"/> (member of <paramref name="workspaces"/>).</summary>
    public static string Token(string userId = "alice", params string[] workspaces) => TestTokens.Mint(userId, workspaces);

    /// <summary>Hub client options of a user (a bearer token, as the .NET client sends it).</summary>
    public static GatewayHubClientOptions As(string userId = "alice", params string[] workspaces) => new() { AccessToken = Token(userId, workspaces) };

    /// <summary>Hub client options of the admin API key, who sees sessions created directly on opencode.</summary>
    public static GatewayHubClientOptions AsAdmin() => new() { ApiKey = AdminApiKey };

    /// <summary>A hub client of <paramref name="userId"/>, connected.</summary>
    public Task<GatewayHubClient> ConnectHubAsync(string userId, params string[] workspaces) =>
        GatewayHubClient.ConnectAsync(HubUrl, As(userId, workspaces));

    public Task<GatewayHubClient> ConnectHubAsync(GatewayHubClientOptions options) => GatewayHubClient.ConnectAsync(HubUrl, options);

    /// <summary>An HTTP client of the gateway acting as <paramref name="userId"/> (Bearer token), or anonymous when null.</summary>
    public HttpClient HttpClient(string? userId = "alice", params string[] workspaces)
    {
        var http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromMinutes(2) };
        if (userId is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token(userId, workspaces));
        }

        return http;
    }

    /// <summary>An HTTP client sending <paramref name="key"/> as <c>X-Api-Key</c>.</summary>
    public HttpClient ApiKeyClient(string key)
    {
        var http = HttpClient(userId: null);
        http.DefaultRequestHeaders.Add("X-Api-Key", key);
        return http;
    }

    public T Get<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        try
        {
            if (_started)
            {
                await App.StopAsync();
            }
        }
        finally
        {
            await App.DisposeAsync();
            await DeleteAsync(_dataDirectory, _ownUpstream);
        }
    }

    private static async Task DeleteAsync(string dataDirectory, FakeOpencode? ownUpstream)
    {
        if (ownUpstream is not null)
        {
            await ownUpstream.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(dataDirectory, recursive: true);
    }
}
