using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace OpencodeGateway.Testing;

/// <summary>
/// A stand-in for <c>opencode serve</c> on a loopback port: REST for sessions and messages from in-memory state, and a
/// <c>/global/event</c> stream the test writes raw lines to, can cut, or can leave silent (a stall).
/// </summary>
public sealed class FakeOpencode : IAsyncDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentDictionary<string, List<JsonElement>> _messages = new();
    private Channel<string> _stream = Channel.CreateUnbounded<string>();
    private CancellationTokenSource _cut = new();
    private int _connections;

    private FakeOpencode()
    {
    }

    public Uri BaseUrl { get; private set; } = null!;
    public int StreamConnections => Volatile.Read(ref _connections);
    public bool SendConnectedEvent { get; set; } = true;

    public static async Task<FakeOpencode> StartAsync()
    {
        var fake = new FakeOpencode();
        (fake._app, var address) = await LoopbackApp.StartAsync(fake.Map);
        fake.BaseUrl = new Uri(address);
        return fake;
    }

    /// <summary>Registers a session with stored messages (opencode's <c>{info, parts}</c> shape).</summary>
    public void AddSession(string sessionId, params JsonElement[] messages) => _messages[sessionId] = [.. messages];

    /// <summary>Writes one raw SSE data payload (a JSON text, or garbage) to the current stream.</summary>
    public void Emit(string data) => _stream.Writer.TryWrite($"data: {data}\n\n");

    public void EmitRaw(string text) => _stream.Writer.TryWrite(text);

    public void EmitEvent(string type, object properties) =>
        Emit(JsonSerializer.Serialize(new { directory = "/p", project = "p", payload = new { id = "evt_1", type, properties } }));

    /// <summary>Ends the current stream abruptly (as a killed server does); the next connection gets a fresh one.</summary>
    public void CutStream()
    {
        _stream.Writer.TryComplete();
        _cut.Cancel();
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/global/event", async (HttpContext context) =>
        {
            Interlocked.Increment(ref _connections);
            var stream = _stream;
            var cut = _cut;
            context.Response.ContentType = "text/event-stream";
            if (SendConnectedEvent)
            {
                await context.Response.WriteAsync("data: {\"payload\":{\"id\":\"evt_0\",\"type\":\"server.connected\",\"properties\":{}}}\n\n");
            }

            await context.Response.Body.FlushAsync();
            try
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, cut.Token);
                await foreach (var line in stream.Reader.ReadAllAsync(linked.Token))
                {
                    await context.Response.WriteAsync(line, linked.Token);
                    await context.Response.Body.FlushAsync(linked.Token);
                }
            }
            catch (OperationCanceledException)
            {
            }

            if (cut.IsCancellationRequested)
            {
                lock (this)
                {
                    if (ReferenceEquals(_stream, stream))
                    {
                        _stream = Channel.CreateUnbounded<string>();
                        _cut = new CancellationTokenSource();
                    }
                }

                context.Abort();
            }
        });
        app.MapGet("/session/{id}", (string id) => _messages.ContainsKey(id)
            ? Results.Json(new { id, title = "fake", directory = "/p", time = new { created = 1, updated = 1 } })
            : Results.Json(new { name = "NotFoundError", data = new { message = $"Session not found: {id}" } }, statusCode: 404));
        app.MapGet("/session/{id}/message", (string id) => _messages.TryGetValue(id, out var messages)
            ? Results.Json(messages)
            : Results.Json(new { name = "NotFoundError", data = new { message = $"Session not found: {id}" } }, statusCode: 404));
        app.MapGet("/session/{id}/todo", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/session/status", () => Results.Json(new { }));
        app.MapGet("/permission", () => Results.Json(Array.Empty<object>()));
    }

    public async ValueTask DisposeAsync()
    {
        _stream.Writer.TryComplete();
        _cut.Cancel();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
