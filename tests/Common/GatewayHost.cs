using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Testing;

/// <summary>
/// The real gateway on a loopback port, in this process, with configuration given as key/value pairs: its own SQLite
/// store in a temporary folder, tokens signed with <see cref="TestTokens.DevSigningKey"/>, and one admin API key.
/// </summary>
public sealed class GatewayHost : IAsyncDisposable
{
    public const string AdminApiKey = "test-admin-api-key";
    private readonly string _dataDirectory;

    private GatewayHost(WebApplication app, Uri baseUrl, string dataDirectory)
    {
        App = app;
        BaseUrl = baseUrl;
        _dataDirectory = dataDirectory;
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
        var data = Directory.CreateTempSubdirectory("gateway-test-").FullName;
        var adminKeyHash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(AdminApiKey)));
        var args = new List<string>
        {
            "--urls", "http://127.0.0.1:0", "--Gateway:Upstreams:0:Id=local", $"--Gateway:Upstreams:0:BaseUrl={upstream}",
            $"--Gateway:Store:DataDirectory={data}", $"--Gateway:Auth:Jwt:SigningKey={TestTokens.DevSigningKey}",
            $"--Gateway:Auth:ApiKeys:0:KeyHash={adminKeyHash}", "--Gateway:Auth:ApiKeys:0:Admin=true", "--Gateway:Auth:ApiKeys:0:Name=tests",
        };
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
        return new GatewayHost(app, new Uri(address.EndsWith('/') ? address : address + "/"), data);
    }

    /// <summary>A token for <paramref name="userId"/> (member of <paramref name="workspaces"/>).</summary>
    public static string Token(string userId = "alice", params string[] workspaces) => TestTokens.Mint(userId, workspaces);

    /// <summary>Hub connection options of a user (token in the query string, as browsers do).</summary>
    public static TestClient.HubConnectionOptions As(string userId = "alice") => new() { AccessToken = Token(userId) };

    /// <summary>Hub connection options of the admin API key (header), who sees sessions created directly on opencode.</summary>
    public static TestClient.HubConnectionOptions AsAdmin() =>
        new() { ConfigureWebSocket = o => o.SetRequestHeader("X-Api-Key", AdminApiKey) };

    /// <summary>An HTTP client of the gateway acting as <paramref name="userId"/>.</summary>
    public HttpClient HttpClient(string? userId = "alice")
    {
        var http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromMinutes(2) };
        if (userId is not null)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token(userId));
        }

        return http;
    }

    public T Get<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_dataDirectory, recursive: true);
    }
}
