using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Support;

/// <summary>
/// An in-process stand-in for <c>opencode serve</c> on a loopback port: sessions, messages, status, permissions,
/// prompt_async, abort and the <c>/global/event</c> stream, with switches to make it fail.
/// </summary>
public sealed class FakeOpencode : IAsyncDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentDictionary<string, JsonObject> _sessions = new();
    private readonly ConcurrentDictionary<int, Channel<string>> _subscribers = new();
    private int _nextId;
    private int _nextSubscriber;

    public ConcurrentQueue<string> Prompts { get; } = new();
    public ConcurrentQueue<string> Aborts { get; } = new();
    public ConcurrentQueue<string> Deleted { get; } = new();
    public ConcurrentQueue<string> PermissionReplies { get; } = new();
    /// <summary>Pending permission requests (<c>{id, sessionID, …}</c>) answered by <c>GET /permission</c>.</summary>
    public ConcurrentBag<JsonObject> Permissions { get; } = [];

    /// <summary>When true, <c>POST /session</c> answers 500.</summary>
    public bool FailCreate { get; set; }

    public string BaseUrl { get; private set; } = "";

    private FakeOpencode()
    {
    }

    public static async Task<FakeOpencode> StartAsync()
    {
        var fake = new FakeOpencode();
        (fake._app, fake.BaseUrl) = await LoopbackApp.StartAsync(fake.Map);
        return fake;
    }

    public bool HasSession(string id) => _sessions.ContainsKey(id);

    /// <summary>A session that exists only on opencode (no gateway record).</summary>
    public string AddSession(string title = "direct")
    {
        var id = NewId();
        _sessions[id] = Info(id, title);
        return id;
    }

    /// <summary>Sends one event on every open <c>/global/event</c> stream.</summary>
    public void Emit(string type, object properties)
    {
        var line = JsonSerializer.Serialize(new { directory = "/work", payload = new { type, properties } });
        foreach (var subscriber in _subscribers.Values)
        {
            subscriber.Writer.TryWrite(line);
        }
    }

    /// <summary>A <c>message.updated</c> event with a new message id: always forwarded to watchers.</summary>
    public string EmitMessage(string sessionId)
    {
        var messageId = "msg_" + Interlocked.Increment(ref _nextId).ToString("D6");
        Emit("message.updated", new
        {
            sessionID = sessionId,
            info = new { id = messageId, sessionID = sessionId, role = "assistant", time = new { created = 1 } },
        });
        return messageId;
    }

    public int Subscribers => _subscribers.Count;

    private string NewId() => "ses_fake" + Interlocked.Increment(ref _nextId).ToString("D6");

    private static JsonObject Info(string id, string? title) => new()
    {
        ["id"] = id,
        ["title"] = title ?? "New session",
        ["directory"] = "/work",
        ["time"] = new JsonObject { ["created"] = 1, ["updated"] = 1 },
    };

    private static IResult NotFound(string id) =>
        Results.Json(new { name = "NotFoundError", data = new { message = $"Session not found: {id}" } }, statusCode: 404);

    private void Map(WebApplication app)
    {
        app.MapPost("/session", async (HttpContext context) =>
        {
            if (FailCreate)
            {
                return Results.Json(new { name = "UnknownError", data = new { message = "create failed" } }, statusCode: 500);
            }

            var body = await JsonNode.ParseAsync(context.Request.Body);
            var id = NewId();
            var info = Info(id, body?["title"]?.GetValue<string>());
            _sessions[id] = info;
            return Results.Content(info.ToJsonString(), "application/json");
        });
        app.MapGet("/session", () => Results.Content(new JsonArray([.. _sessions.Values.Select(v => v.DeepClone())]).ToJsonString(), "application/json"));
        app.MapGet("/session/status", () => Results.Json(new { }));
        app.MapGet("/session/{id}", (string id) =>
            _sessions.TryGetValue(id, out var info) ? Results.Content(info.ToJsonString(), "application/json") : NotFound(id));
        app.MapPatch("/session/{id}", async (string id, HttpContext context) =>
        {
            if (!_sessions.TryGetValue(id, out var info))
            {
                return NotFound(id);
            }

            var body = await JsonNode.ParseAsync(context.Request.Body);
            if (body?["title"] is { } title)
            {
                info["title"] = title.GetValue<string>();
            }

            return Results.Content(info.ToJsonString(), "application/json");
        });
        app.MapDelete("/session/{id}", (string id) =>
        {
            if (!_sessions.TryRemove(id, out _))
            {
                return NotFound(id);
            }

            Deleted.Enqueue(id);
            return Results.Json(true);
        });
        app.MapGet("/session/{id}/message", (string id) => _sessions.ContainsKey(id)
            ? Results.Json(new object[]
            {
                new { info = new { id = "msg_user1", sessionID = id, role = "user" }, parts = Array.Empty<object>() },
                new { info = new { id = "msg_asst1", sessionID = id, role = "assistant", cost = 0.25, tokens = new { input = 10, output = 20 } }, parts = Array.Empty<object>() },
            })
            : NotFound(id));
        app.MapGet("/session/{id}/todo", (string id) => _sessions.ContainsKey(id) ? Results.Json(Array.Empty<object>()) : NotFound(id));
        app.MapPost("/session/{id}/prompt_async", (string id) =>
        {
            if (!_sessions.ContainsKey(id))
            {
                return NotFound(id);
            }

            Prompts.Enqueue(id);
            return Results.NoContent();
        });
        app.MapPost("/session/{id}/abort", (string id) =>
        {
            Aborts.Enqueue(id);
            return Results.Json(true);
        });
        app.MapGet("/permission", () => Results.Content(new JsonArray([.. Permissions.Select(p => p.DeepClone())]).ToJsonString(), "application/json"));
        app.MapPost("/permission/{id}/reply", (string id) =>
        {
            PermissionReplies.Enqueue(id);
            return Results.Json(true);
        });
        app.MapGet("/global/event", async (HttpContext context) =>
        {
            var id = Interlocked.Increment(ref _nextSubscriber);
            var channel = Channel.CreateUnbounded<string>();
            _subscribers[id] = channel;
            try
            {
                context.Response.ContentType = "text/event-stream";
                await Write(context, """{"payload":{"type":"server.connected","properties":{}}}""");
                using var heartbeat = new PeriodicTimer(TimeSpan.FromSeconds(5));
                var heartbeatTask = Task.Run(async () =>
                {
                    while (await heartbeat.WaitForNextTickAsync(context.RequestAborted))
                    {
                        channel.Writer.TryWrite("""{"payload":{"type":"server.heartbeat","properties":{}}}""");
                    }
                });
                await foreach (var line in channel.Reader.ReadAllAsync(context.RequestAborted))
                {
                    await Write(context, line);
                }
            }
            catch (OperationCanceledException)
            {
                // the gateway disconnected
            }
            finally
            {
                _subscribers.TryRemove(id, out _);
            }
        });
    }

    private static async Task Write(HttpContext context, string data)
    {
        await context.Response.WriteAsync($"data: {data}\n\n", Encoding.UTF8, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        foreach (var subscriber in _subscribers.Values)
        {
            subscriber.Writer.TryComplete();
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
