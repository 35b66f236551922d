using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace OpencodeGateway.Testing;

/// <summary>
/// A stand-in for <c>opencode serve</c> on a loopback port. REST from in-memory state: sessions (create, get, list,
/// rename, delete, children), their stored messages (paged with <c>limit</c> and <c>before</c> as opencode pages them),
/// todo, status, permissions, questions, <c>prompt_async</c>, abort, permission and question replies, each recorded. The <c>/global/event</c> stream takes what the test writes (events, raw lines, garbage), can be cut
/// (<see cref="CutStreams"/>) or left silent (<see cref="Heartbeats"/> off: a stall).
/// </summary>
public sealed class FakeOpencode : IAsyncDisposable
{
    private const string ConnectedEvent = """{"payload":{"id":"evt_0","type":"server.connected","properties":{}}}""";
    private const string HeartbeatEvent = """{"payload":{"type":"server.heartbeat","properties":{}}}""";

    private readonly ConcurrentDictionary<string, FakeSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<int, Subscriber> _subscribers = new();
    private WebApplication _app = null!;
    private int _nextId;
    private int _nextSubscriber;
    private int _streamConnections;
    private int _disposed;

    private sealed record FakeSession(JsonObject Info, List<JsonElement> Messages);

    private sealed record Subscriber(Channel<string> Lines, CancellationTokenSource Cut);

    private FakeOpencode()
    {
    }

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary><c>/global/event</c> connections ever opened.</summary>
    public int StreamConnections => Volatile.Read(ref _streamConnections);

    /// <summary><c>/global/event</c> connections open now.</summary>
    public int Subscribers => _subscribers.Count;

    /// <summary>Send <c>server.heartbeat</c> every <see cref="HeartbeatInterval"/> (opencode: 10 s). Off = a silent stream.</summary>
    public bool Heartbeats { get; set; } = true;

    public static TimeSpan HeartbeatInterval => TimeSpan.FromSeconds(5);

    /// <summary>When true, <c>POST /session</c> answers 500.</summary>
    public bool FailCreate { get; set; }

    /// <summary>Every request, as "<c>METHOD /path</c>", in arrival order.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    public ConcurrentQueue<string> Prompts { get; } = new();
    public ConcurrentQueue<string> Aborts { get; } = new();
    public ConcurrentQueue<string> Deleted { get; } = new();
    public ConcurrentQueue<string> PermissionReplies { get; } = new();
    /// <summary>Question replies and rejections, as "<c>reply {id} {answers}</c>" / "<c>reject {id}</c>".</summary>
    public ConcurrentQueue<string> QuestionAnswers { get; } = new();

    /// <summary>Pending questions (<c>{id, sessionID, questions}</c>) answered by <c>GET /question</c>.</summary>
    public ConcurrentBag<JsonObject> Questions { get; } = [];

    /// <summary>Pending permission requests (<c>{id, sessionID, …}</c>) answered by <c>GET /permission</c>.</summary>
    public ConcurrentBag<JsonObject> Permissions { get; } = [];

    public static async Task<FakeOpencode> StartAsync()
    {
        var fake = new FakeOpencode();
        (fake._app, var address) = await LoopbackApp.StartAsync(fake.Map);
        fake.BaseUrl = new Uri(address.EndsWith('/') ? address : address + "/");
        return fake;
    }

    public bool HasSession(string id) => _sessions.ContainsKey(id);

    /// <summary>
    /// Registers (or replaces) session <paramref name="sessionId"/> with exactly these stored messages, opencode's
    /// <c>{info, parts}</c> shape: what <c>GET /session/{id}/message</c> answers from then on.
    /// </summary>
    public void AddSession(string sessionId, params JsonElement[] messages) =>
        _sessions[sessionId] = new FakeSession(Info(sessionId, "fake"), [.. messages]);

    /// <summary>A subagent's session: its info names <paramref name="parentId"/> (what opencode's task tool makes).</summary>
    public void AddChildSession(string sessionId, string parentId, string title = "sub task (@general subagent)")
    {
        var info = Info(sessionId, title);
        info["parentID"] = parentId;
        _sessions[sessionId] = new FakeSession(info, []);
    }

    /// <summary>A session made directly on opencode (the gateway has no record of it), holding one exchange.</summary>
    public string CreateSessionDirectly(string title = "direct")
    {
        var id = NewId();
        _sessions[id] = new FakeSession(Info(id, title), OneExchange(id));
        return id;
    }

    /// <summary>Sends one event (<c>{directory, payload:{type, properties}}</c>) on every open stream.</summary>
    public void Emit(string type, object properties) =>
        Emit(JsonSerializer.Serialize(new { directory = "/work", project = "p", payload = new { id = "evt_x", type, properties } }));

    /// <summary>Sends one SSE <c>data:</c> line with this payload (a JSON text, or garbage) on every open stream.</summary>
    public void Emit(string data) => EmitRaw($"data: {data}\n\n");

    /// <summary>Writes raw text (any SSE, or not) on every open stream.</summary>
    public void EmitRaw(string text)
    {
        foreach (var subscriber in _subscribers.Values)
        {
            subscriber.Lines.Writer.TryWrite(text);
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

    /// <summary>Ends every open stream abruptly, as a killed server does. New connections get a fresh stream.</summary>
    public void CutStreams()
    {
        foreach (var subscriber in _subscribers.Values)
        {
            subscriber.Cut.Cancel();
        }
    }

    private string NewId() => "ses_fake" + Interlocked.Increment(ref _nextId).ToString("D6");

    private static JsonObject Info(string id, string? title) => new()
    {
        ["id"] = id,
        ["title"] = title ?? "New session",
        ["directory"] = "/work",
        ["time"] = new JsonObject { ["created"] = 1, ["updated"] = 1 },
    };

    /// <summary>A user message and the assistant's answer (cost 0.25), without parts.</summary>
    private static List<JsonElement> OneExchange(string id) =>
    [
        JsonSerializer.SerializeToElement(new { info = new { id = "msg_user1", sessionID = id, role = "user" }, parts = Array.Empty<object>() }),
        JsonSerializer.SerializeToElement(new
        {
            info = new { id = "msg_asst1", sessionID = id, role = "assistant", cost = 0.25, tokens = new { input = 10, output = 20 } },
            parts = Array.Empty<object>(),
        }),
    ];

    private static IResult Json(JsonNode node) => Results.Content(node.ToJsonString(), "application/json");

    private static IResult NotFound(string id) =>
        Results.Json(new { name = "NotFoundError", data = new { message = $"Session not found: {id}" } }, statusCode: 404);

    private void Map(WebApplication app)
    {
        app.Use((context, next) =>
        {
            Requests.Enqueue($"{context.Request.Method} {context.Request.Path}");
            return next(context);
        });
        app.MapPost("/session", async (HttpContext context) =>
        {
            if (FailCreate)
            {
                return Results.Json(new { name = "UnknownError", data = new { message = "create failed" } }, statusCode: 500);
            }

            var body = await JsonNode.ParseAsync(context.Request.Body);
            var id = NewId();
            var session = new FakeSession(Info(id, body?["title"]?.GetValue<string>()), OneExchange(id));
            _sessions[id] = session;
            return Json(session.Info);
        });
        app.MapGet("/session", () => Json(new JsonArray([.. _sessions.Values.Select(s => s.Info.DeepClone())])));
        app.MapGet("/session/status", () => Results.Json(new { }));
        app.MapGet("/session/{id}", (string id) => _sessions.TryGetValue(id, out var session) ? Json(session.Info) : NotFound(id));
        app.MapPatch("/session/{id}", async (string id, HttpContext context) =>
        {
            if (!_sessions.TryGetValue(id, out var session))
            {
                return NotFound(id);
            }

            var body = await JsonNode.ParseAsync(context.Request.Body);
            if (body?["title"] is { } title)
            {
                session.Info["title"] = title.GetValue<string>();
            }

            return Json(session.Info);
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
        app.MapGet("/session/{id}/message", (string id, HttpContext context) =>
            _sessions.TryGetValue(id, out var session) ? MessagePage(session.Messages, context) : NotFound(id));
        app.MapGet("/session/{id}/children", (string id) => _sessions.ContainsKey(id)
            ? Json(new JsonArray([.. _sessions.Values.Where(s => s.Info["parentID"]?.GetValue<string>() == id).Select(s => s.Info.DeepClone())]))
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
        app.MapGet("/permission", () => Json(new JsonArray([.. Permissions.Select(p => p.DeepClone())])));
        app.MapPost("/permission/{id}/reply", (string id) =>
        {
            PermissionReplies.Enqueue(id);
            return Results.Json(true);
        });
        app.MapGet("/question", () => Json(new JsonArray([.. Questions.Select(q => q.DeepClone())])));
        app.MapPost("/question/{id}/reply", async (string id, HttpContext context) =>
        {
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            QuestionAnswers.Enqueue($"reply {id} {body.RootElement.GetProperty("answers").GetRawText()}");
            return Results.Json(true);
        });
        app.MapPost("/question/{id}/reject", (string id) =>
        {
            QuestionAnswers.Enqueue($"reject {id}");
            return Results.Json(true);
        });
        app.MapGet("/global/event", StreamAsync);
    }

    /// <summary>
    /// opencode's paging: with <c>limit</c> the newest messages (before the <c>before</c> cursor's message), and
    /// <c>x-next-cursor</c> (base64 of <c>{"id","time"}</c>) when older ones remain.
    /// </summary>
    private static IResult MessagePage(List<JsonElement> messages, HttpContext context)
    {
        var query = context.Request.Query;
        if (!int.TryParse(query["limit"], out var limit))
        {
            return Results.Json(messages);
        }

        var older = messages;
        if (query["before"].FirstOrDefault() is { } before)
        {
            using var cursor = JsonDocument.Parse(Convert.FromBase64String(before));
            var id = cursor.RootElement.GetProperty("id").GetString()!;
            older = [.. messages.Where(m => string.CompareOrdinal(m.GetProperty("info").GetProperty("id").GetString(), id) < 0)];
        }

        var page = older.Skip(Math.Max(0, older.Count - limit)).ToList();
        if (page.Count < older.Count)
        {
            var first = page[0].GetProperty("info");
            var created = first.TryGetProperty("time", out var time) && time.TryGetProperty("created", out var c) ? c.GetInt64() : 0;
            context.Response.Headers["x-next-cursor"] = Convert.ToBase64String(
                JsonSerializer.SerializeToUtf8Bytes(new { id = first.GetProperty("id").GetString(), time = created }));
        }

        return Results.Json(page);
    }

    private async Task StreamAsync(HttpContext context)
    {
        Interlocked.Increment(ref _streamConnections);
        var id = Interlocked.Increment(ref _nextSubscriber);
        var subscriber = new Subscriber(Channel.CreateUnbounded<string>(), new CancellationTokenSource());
        _subscribers[id] = subscriber;
        try
        {
            context.Response.ContentType = "text/event-stream";
            await context.Response.WriteAsync($"data: {ConnectedEvent}\n\n", Encoding.UTF8, context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            using var stream = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, subscriber.Cut.Token);
            _ = HeartbeatAsync(subscriber.Lines.Writer, stream.Token);
            await foreach (var text in subscriber.Lines.Reader.ReadAllAsync(stream.Token))
            {
                await context.Response.WriteAsync(text, Encoding.UTF8, stream.Token);
                await context.Response.Body.FlushAsync(stream.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // the gateway disconnected, or the test cut the stream
        }
        finally
        {
            _subscribers.TryRemove(id, out _);
        }

        if (subscriber.Cut.IsCancellationRequested)
        {
            context.Abort(); // no clean end of the chunked body: the connection just dies
        }
    }

    private async Task HeartbeatAsync(ChannelWriter<string> lines, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                if (Heartbeats)
                {
                    lines.TryWrite($"data: {HeartbeatEvent}\n\n");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stream ended
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        foreach (var subscriber in _subscribers.Values)
        {
            subscriber.Lines.Writer.TryComplete();
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
