using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Testing;

/// <summary>
/// An HTTP proxy between the gateway and an opencode server, on a loopback port: it counts the REST requests opencode
/// receives and can cut the event streams passing through it (the gateway then sees its stream end abruptly, as when a
/// network path or opencode breaks mid-answer).
/// </summary>
public sealed class UpstreamProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<HttpContext, byte> _streams = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private int _streamConnections;

    private UpstreamProxy(WebApplication app, HttpClient http)
    {
        _app = app;
        _http = http;
    }

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>Event-stream connections opened through the proxy so far.</summary>
    public int StreamConnections => Volatile.Read(ref _streamConnections);

    /// <summary>Event streams open right now.</summary>
    public int OpenStreams => _streams.Count;

    /// <summary>
    /// The most event streams open at once since the last <see cref="ResetCounts"/>. Streams count as open together
    /// only when they all still are <see cref="OverlapGrace"/> after the newest of them opened: a stream's end reaches
    /// this proxy a moment after the gateway closed it (when Kestrel gets to the FIN), and a hand-over can open the next
    /// stream 15 ms after the lease's release. A second reader that is a bug reads on for longer: a drained stream
    /// 0.5–2 s, a holder that lost its lease until its next renewal.
    /// </summary>
    public int MaxOpenStreams => Volatile.Read(ref _maxOpenStreams);

    public static TimeSpan OverlapGrace => TimeSpan.FromMilliseconds(250);

    private int _maxOpenStreams;

    /// <summary>Every request other than the event stream, as "METHOD /path", in arrival order.</summary>
    public IReadOnlyList<string> RestRequests => [.. _requests];

    public static async Task<UpstreamProxy> StartAsync(Uri upstream)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false })
        {
            BaseAddress = upstream, Timeout = Timeout.InfiniteTimeSpan,
        };
        var app = builder.Build();
        var proxy = new UpstreamProxy(app, http);
        app.Run(proxy.ForwardAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        proxy.BaseUrl = new Uri(address.EndsWith('/') ? address : address + "/");
        return proxy;
    }

    /// <summary>Ends every event stream passing through now, without a goodbye (the connections are aborted).</summary>
    public void CutEventStreams()
    {
        foreach (var context in _streams.Keys)
        {
            context.Abort();
        }
    }

    /// <summary>Forgets the requests counted so far, and the most streams open at once (it becomes the current count).</summary>
    public void ResetCounts()
    {
        _requests.Clear();
        Volatile.Write(ref _maxOpenStreams, _streams.Count);
    }

    private async Task ForwardAsync(HttpContext context)
    {
        var path = context.Request.Path + context.Request.QueryString;
        var isStream = context.Request.Path.StartsWithSegments("/global/event") || context.Request.Path.StartsWithSegments("/event");
        if (isStream)
        {
            Interlocked.Increment(ref _streamConnections);
            _streams[context] = 0;
            var openTogether = _streams.Keys.ToArray();
            if (openTogether.Length == 1)
            {
                RaiseMaxOpenStreams(1);
            }
            else
            {
                _ = CountStillOpenAfterGraceAsync(openTogether);
            }
        }
        else
        {
            _requests.Enqueue($"{context.Request.Method} {context.Request.Path}");
        }

        try
        {
            using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), path.TrimStart('/'));
            if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
            {
                request.Content = new StreamContent(context.Request.Body);
            }

            foreach (var (name, values) in context.Request.Headers)
            {
                if (name is "Host" or "Content-Length" or "Transfer-Encoding")
                {
                    continue;
                }

                if (!request.Headers.TryAddWithoutValidation(name, [.. values]))
                {
                    request.Content?.Headers.TryAddWithoutValidation(name, [.. values]);
                }
            }

            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var (name, values) in response.Headers.Concat(response.Content.Headers))
            {
                if (name is not ("Transfer-Encoding" or "Content-Length"))
                {
                    context.Response.Headers[name] = values.ToArray();
                }
            }

            await using var body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            context.Abort();
        }
        finally
        {
            _streams.TryRemove(context, out _);
        }
    }

    private async Task CountStillOpenAfterGraceAsync(HttpContext[] openTogether)
    {
        await Task.Delay(OverlapGrace);
        RaiseMaxOpenStreams(openTogether.Count(_streams.ContainsKey));
    }

    private void RaiseMaxOpenStreams(int open)
    {
        int max;
        while (open > (max = Volatile.Read(ref _maxOpenStreams)) && Interlocked.CompareExchange(ref _maxOpenStreams, open, max) != max)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        CutEventStreams();
        await _app.DisposeAsync();
        _http.Dispose();
    }
}
