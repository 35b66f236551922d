using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace Gateway.Tests.Upstreams;

/// <summary>
/// The upstreams' named clients (IHttpClientFactory + Microsoft.Extensions.Http.Resilience) against a scripted
/// upstream: which calls are retried, the circuit breaker of each upstream, timeouts and their error codes.
/// </summary>
public sealed class UpstreamHttpClientTests
{
    /// <summary>An upstream that answers like opencode, except that the next <see cref="FailNext"/> requests get 503.</summary>
    private sealed class ScriptedUpstream : IAsyncDisposable
    {
        private WebApplication _app = null!;
        private int _failNext;

        public ConcurrentQueue<string> Requests { get; } = new();
        public string BaseUrl { get; private set; } = "";
        public int FailNext { set => Volatile.Write(ref _failNext, value); }

        public int Count(string request) => Requests.Count(r => r == request);

        public static async Task<ScriptedUpstream> StartAsync()
        {
            var upstream = new ScriptedUpstream();
            (upstream._app, upstream.BaseUrl) = await LoopbackApp.StartAsync(app => app.Run(upstream.HandleAsync));
            return upstream;
        }

        private async Task HandleAsync(HttpContext context)
        {
            var request = $"{context.Request.Method} {context.Request.Path}";
            Requests.Enqueue(request);
            if (Interlocked.Decrement(ref _failNext) >= 0)
            {
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            }

            if (context.Request.Path.StartsWithSegments("/session/ses_slow"))
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }

            if (context.Request.Path.Value!.EndsWith("/prompt_async", StringComparison.Ordinal))
            {
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return;
            }

            await context.Response.WriteAsJsonAsync(new { id = "ses_1", title = "t" });
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }

    private static ServiceProvider Services(TimeProvider time, params UpstreamOptions[] upstreams)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(time);
        services.AddUpstreams(new ConfigurationBuilder().Build());
        services.Configure<UpstreamsOptions>(o => o.Upstreams = [.. upstreams]);
        return services.BuildServiceProvider();
    }

    private static UpstreamOptions Upstream(string id, string baseUrl, TimeSpan? requestTimeout = null) =>
        new() { Id = id, BaseUrl = baseUrl, RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task A_read_is_retried_after_transient_failures()
    {
        await using var upstream = await ScriptedUpstream.StartAsync();
        await using var services = Services(TimeProvider.System, Upstream("local", upstream.BaseUrl));
        var client = services.GetRequiredService<UpstreamRegistry>().Get("local");

        upstream.FailNext = UpstreamHttpClients.MaxReadRetries;
        await client.GetSessionAsync("ses_1", CancellationToken.None);

        Assert.Equal(UpstreamHttpClients.MaxReadRetries + 1, upstream.Count("GET /session/ses_1"));
    }

    [Fact]
    public async Task Prompts_aborts_permission_replies_creates_patches_and_deletes_are_never_retried()
    {
        await using var upstream = await ScriptedUpstream.StartAsync();
        await using var services = Services(TimeProvider.System, Upstream("local", upstream.BaseUrl));
        var client = services.GetRequiredService<UpstreamRegistry>().Get("local");
        var calls = new (string Request, Func<Task> Call)[]
        {
            ("POST /session/ses_1/prompt_async", () => client.PromptAsync("ses_1", [new PromptPart("text", "hi")], null, null, CancellationToken.None)),
            ("POST /session/ses_1/abort", () => client.AbortAsync("ses_1", CancellationToken.None)),
            ("POST /permission/per_1/reply", () => client.ReplyPermissionAsync("per_1", "once", null, CancellationToken.None)),
            ("POST /session", () => client.CreateSessionAsync("t", CancellationToken.None)),
            ("PATCH /session/ses_1", () => client.UpdateSessionTitleAsync("ses_1", "t", CancellationToken.None)),
            ("DELETE /session/ses_1", () => client.DeleteSessionAsync("ses_1", CancellationToken.None)),
        };

        foreach (var (request, call) in calls)
        {
            upstream.FailNext = 1;
            var e = await Assert.ThrowsAsync<GatewayException>(call);
            Assert.Equal(GatewayErrorCodes.UpstreamError, e.Code);
            Assert.Equal(1, upstream.Count(request));
        }
    }

    [Fact]
    public async Task A_failing_upstream_opens_its_own_circuit_and_is_probed_again_after_the_break()
    {
        var time = new FakeTimeProvider();
        await using var failing = await ScriptedUpstream.StartAsync();
        await using var healthy = await ScriptedUpstream.StartAsync();
        await using var services = Services(time, Upstream("a", failing.BaseUrl), Upstream("b", healthy.BaseUrl));
        var registry = services.GetRequiredService<UpstreamRegistry>();

        var attempts = UpstreamHttpClients.CircuitMinimumThroughput;
        failing.FailNext = attempts;
        for (var i = 0; i < attempts; i++)
        {
            var e = await Assert.ThrowsAsync<GatewayException>(() => registry.Get("a").CreateSessionAsync("t", CancellationToken.None));
            Assert.Equal(GatewayErrorCodes.UpstreamError, e.Code);
        }

        // open: answered at once, without reaching the upstream
        var open = await Assert.ThrowsAsync<GatewayException>(() => registry.Get("a").CreateSessionAsync("t", CancellationToken.None));
        Assert.Equal(GatewayErrorCodes.UpstreamUnavailable, open.Code);
        Assert.Contains("circuit open", open.Message);
        Assert.Equal(attempts, failing.Count("POST /session"));
        // the other upstream's circuit is its own
        await registry.Get("b").CreateSessionAsync("t", CancellationToken.None);

        time.Advance(UpstreamHttpClients.CircuitBreakDuration);
        await registry.Get("a").CreateSessionAsync("t", CancellationToken.None);
        Assert.Equal(attempts + 1, failing.Count("POST /session"));
    }

    [Fact]
    public async Task Past_the_request_timeout_or_when_unreachable_a_call_is_upstream_unavailable()
    {
        await using var upstream = await ScriptedUpstream.StartAsync();
        var closedPort = $"http://127.0.0.1:{FreePorts.Take()}";
        await using var services = Services(TimeProvider.System,
            Upstream("slow", upstream.BaseUrl, TimeSpan.FromMilliseconds(500)), Upstream("gone", closedPort));
        var registry = services.GetRequiredService<UpstreamRegistry>();

        var slow = await Assert.ThrowsAsync<GatewayException>(() => registry.Get("slow").GetSessionAsync("ses_slow", CancellationToken.None));
        Assert.Equal(GatewayErrorCodes.UpstreamUnavailable, slow.Code);
        Assert.Contains("did not answer within 0.5 s", slow.Message);

        var gone = await Assert.ThrowsAsync<GatewayException>(() => registry.Get("gone").GetSessionAsync("ses_1", CancellationToken.None));
        Assert.Equal(GatewayErrorCodes.UpstreamUnavailable, gone.Code);
        Assert.Contains("unreachable", gone.Message);
    }

    [Fact]
    public async Task The_event_stream_client_has_no_timeout_and_no_retries()
    {
        await using var upstream = await ScriptedUpstream.StartAsync();
        await using var services = Services(TimeProvider.System, Upstream("local", upstream.BaseUrl, TimeSpan.FromSeconds(1)));
        var client = services.GetRequiredService<UpstreamRegistry>().Get("local");
        using var http = services.GetRequiredService<IHttpClientFactory>().CreateClient(client.EventStreamClientName);

        Assert.Equal(Timeout.InfiniteTimeSpan, http.Timeout);
        upstream.FailNext = 1;
        using var response = await http.GetAsync("global/event");
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(1, upstream.Count("GET /global/event"));
    }
}
