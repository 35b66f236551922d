using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace OpencodeGateway.Bench;

/// <summary>
/// A controlled stand-in for <c>opencode serve</c>: the REST calls a join needs (empty sessions) and one
/// <c>/global/event</c> stream that emits <c>message.part.delta</c> events round-robin over a set of sessions at a set
/// rate. Each delta's text is the emit time in microseconds of <see cref="Clock"/> (same process as the watchers).
/// </summary>
internal sealed class FakeUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile Plan _plan = new([], 0, 0);
    private long _emitted;
    private int _streams;
    private int _openStreams;
    private int _maxOpenStreams;
    private readonly ConcurrentDictionary<string, long> _restCalls = new(StringComparer.Ordinal);

    private sealed record Plan(byte[][] Prefixes, double Rate, long Version);

    private FakeUpstream(WebApplication app) => _app = app;

    public Uri BaseUrl { get; private set; } = null!;
    public long Emitted => Interlocked.Read(ref _emitted);
    public int Streams => Volatile.Read(ref _streams);

    /// <summary>Event streams open right now, and the most open at once since <see cref="ResetMaxOpenStreams"/>.</summary>
    public int OpenStreams => Volatile.Read(ref _openStreams);
    public int MaxOpenStreams => Volatile.Read(ref _maxOpenStreams);

    public void ResetMaxOpenStreams() => Volatile.Write(ref _maxOpenStreams, OpenStreams);

    /// <summary>REST requests served so far (everything but the event stream), by "METHOD route" (unknown paths: "METHOD path 404").</summary>
    public IReadOnlyDictionary<string, long> RestCalls => new Dictionary<string, long>(_restCalls);

    public static long NowMicros => (long)(Stopwatch.GetTimestamp() * (1_000_000.0 / Stopwatch.Frequency));

    public static async Task<FakeUpstream> StartAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeUpstream(app);
        fake.Map(app);
        await app.StartAsync();
        fake.BaseUrl = new Uri($"http://127.0.0.1:{port}/");
        return fake;
    }

    /// <summary>Emits <paramref name="rate"/> events/s in total, round-robin over <paramref name="sessions"/>.</summary>
    public void SetRate(IReadOnlyList<string> sessions, double rate)
    {
        var prefixes = sessions.Select(s => Encoding.UTF8.GetBytes(
            "data: {\"directory\":\"/p\",\"project\":\"p\",\"payload\":{\"id\":\"evt_b\",\"type\":\"message.part.delta\",\"properties\":" +
            $"{{\"sessionID\":\"{s}\",\"messageID\":\"msg_{s}\",\"partID\":\"prt_{s}\",\"field\":\"text\",\"delta\":\"")).ToArray();
        _plan = new Plan(prefixes, rate, _plan.Version + 1);
    }

    private static readonly byte[] Suffix = " \"}}}\n\n"u8.ToArray();

    private void Map(WebApplication app)
    {
        // Counts the REST calls the gateway makes (a mass reconnect must cost O(1) per session, not per client).
        app.Use(async (context, next) =>
        {
            var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText;
            if (route != "/global/event")
            {
                _restCalls.AddOrUpdate($"{context.Request.Method} {route ?? context.Request.Path + " 404"}", 1, (_, n) => n + 1);
            }

            await next(context);
        });
        app.MapGet("/global/event", async (HttpContext context) =>
        {
            Interlocked.Increment(ref _streams);
            var open = Interlocked.Increment(ref _openStreams);
            int max;
            while (open > (max = Volatile.Read(ref _maxOpenStreams)) && Interlocked.CompareExchange(ref _maxOpenStreams, open, max) != max)
            {
            }

            // Runs when the request ends however it ends (Kestrel fires it for aborted requests too).
            context.Response.OnCompleted(() =>
            {
                Interlocked.Decrement(ref _openStreams);
                return Task.CompletedTask;
            });
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync("data: {\"payload\":{\"id\":\"evt_0\",\"type\":\"server.connected\",\"properties\":{}}}\n\n");
            await context.Response.Body.FlushAsync();
            var ct = context.RequestAborted;
            var buffer = new byte[1 << 20];
            Plan plan = _plan;
            var start = Stopwatch.GetTimestamp();
            long sent = 0;
            var next = 0;
            var lastHeartbeat = Stopwatch.GetTimestamp();
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    if (!ReferenceEquals(plan, _plan))
                    {
                        plan = _plan;
                        start = Stopwatch.GetTimestamp();
                        sent = 0;
                        next = 0; // the new plan may have fewer sessions than the index of the old one
                    }

                    var due = plan.Prefixes.Length == 0 ? 0 : (long)(plan.Rate * Stopwatch.GetElapsedTime(start).TotalSeconds) - sent;
                    if (due <= 0)
                    {
                        if (Stopwatch.GetElapsedTime(lastHeartbeat).TotalSeconds > 5)
                        {
                            lastHeartbeat = Stopwatch.GetTimestamp();
                            await context.Response.WriteAsync("data: {\"payload\":{\"type\":\"server.heartbeat\",\"properties\":{}}}\n\n", ct);
                            await context.Response.Body.FlushAsync(ct);
                        }

                        await Task.Delay(1, ct);
                        continue;
                    }

                    // Write what is due now in one flush; cap a batch so a slow reader cannot make it unbounded.
                    var len = 0;
                    var n = 0;
                    var now = NowMicros;
                    while (n < due && len < buffer.Length - 512)
                    {
                        var prefix = plan.Prefixes[next];
                        next = (next + 1) % plan.Prefixes.Length;
                        prefix.CopyTo(buffer, len);
                        len += prefix.Length;
                        Utf8Formatter.TryFormat(now, buffer.AsSpan(len), out var w);
                        len += w;
                        Suffix.CopyTo(buffer, len);
                        len += Suffix.Length;
                        n++;
                    }

                    await context.Response.Body.WriteAsync(buffer.AsMemory(0, len), ct);
                    await context.Response.Body.FlushAsync(ct);
                    sent += n;
                    Interlocked.Add(ref _emitted, n);
                    lastHeartbeat = Stopwatch.GetTimestamp();
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (IOException)
            {
            }
        });
        app.MapGet("/session/status", () => Results.Json(new { }));
        // A created session and an accepted prompt (that nothing answers): what the limits benchmark's calls need.
        app.MapPost("/session", () => Results.Json(new
        {
            id = "ses_bench" + Guid.NewGuid().ToString("N")[..16], title = "bench", directory = "/p", time = new { created = 1, updated = 1 },
        }));
        app.MapPost("/session/{id}/prompt_async", () => Results.NoContent());
        app.MapGet("/session/{id}", (string id) => Results.Json(new { id, title = "bench", directory = "/p", time = new { created = 1, updated = 1 } }));
        app.MapGet("/session/{id}/message", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/session/{id}/todo", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/session/{id}/children", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/permission", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/question", () => Results.Json(Array.Empty<object>()));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
