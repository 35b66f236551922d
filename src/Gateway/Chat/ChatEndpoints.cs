using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using OpencodeGateway.Api;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Snapshots;
using OpencodeGateway.Delivery;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Chat;

/// <summary>
/// <c>/api/chat</c> for clients that do not speak SignalR. It rides on the same fan-out as the hub (no upstream
/// subscription of its own).
/// <list type="bullet">
/// <item><c>POST {message, sessionId?}</c>: sends the prompt (creating a session when none is given) and streams the
/// answer as SSE until the session is idle.</item>
/// <item><c>GET ?sessionId=</c> with <c>Accept: text/event-stream</c>: resumes a stream after <c>Last-Event-ID</c>
/// (header, or <c>lastEventId</c> query) until the session is idle; otherwise answers
/// <c>{session, messages, earlier?, status, permissions, questions, children, metadata, …}</c> (the newest messages;
/// older ones are paged with <c>GET /api/sessions/{id}/messages?before=</c>).</item>
/// </list>
/// </summary>
internal static class ChatEndpoints
{
    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/chat").RequireAuthorization().AddEndpointFilter(SessionsApi.ProblemFilter).WithTags("chat");
        group.MapPost("", PostAsync).DocumentsBody<ChatRequest>(required: true, "application/json").WithSummary("Sends a prompt (creating a session when none is given) and streams the answer as SSE until the session is idle.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream").ProducesProblem(StatusCodes.Status400BadRequest);
        group.MapGet("", GetAsync).WithSummary("With Accept: text/event-stream, resumes the stream after Last-Event-ID; otherwise the session as JSON.")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream").ProducesProblem(StatusCodes.Status404NotFound);
        return endpoints;
    }

    /// <summary>
    /// Largest POST body: a prompt at its longest (<see cref="SessionService.MaxPromptLength"/> characters, each up to 6
    /// bytes as a JSON escape) and a session id.
    /// </summary>
    public const long MaxBodyBytes = SessionService.MaxPromptLength * 6L + 4096;

    private static async Task<IResult> PostAsync(SessionCatalog catalog, SessionService sessions, SessionWatches watches, HttpContext context)
    {
        ChatRequest request;
        using (var body = await JsonBody.ReadAsync(context, MaxBodyBytes, allowEmpty: false, maxDepth: 8, "application/json"))
        {
            request = JsonBody.Deserialize<ChatRequest>(body!.RootElement);
        }

        if (string.IsNullOrWhiteSpace(request.Message))
        {
            throw GatewayException.Invalid("message", "is required.");
        }

        if (!string.IsNullOrEmpty(request.SessionId) && !SessionIds.Session().IsMatch(request.SessionId))
        {
            throw GatewayException.Invalid("sessionId", "must be an opencode session id ('ses_' followed by letters and digits).");
        }

        var ct = context.RequestAborted;
        var user = GatewayUser.From(context.User);
        var sessionId = request.SessionId;
        var admitted = false;
        if (string.IsNullOrEmpty(sessionId))
        {
            // Refused before anything is created: a refused request leaves no session behind.
            sessions.ValidatePrompt(new PromptRequest("", request.Message));
            await sessions.AdmitNewSessionPromptAsync(user, ct);
            admitted = true;
            var title = request.Message.Length <= 60 ? request.Message : request.Message[..60];
            var (record, _) = await catalog.CreateAsync(user, new CreateSessionRequest(title), ct);
            sessionId = record.SessionId;
        }

        var (client, _) = await catalog.AuthorizeAsync(user, sessionId, upstream: null, ct);
        var watch = await watches.SubscribeAsync(client, sessionId, ct);
        try
        {
            await sessions.PromptAsync(user, client, new PromptRequest(sessionId, request.Message), ct, admitted);
        }
        catch
        {
            await watch.DisposeAsync();
            throw;
        }

        return TypedResults.ServerSentEvents(Run(watch, watches, from: null, ct));
    }

    private static async Task<IResult> GetAsync(string? sessionId, string? lastEventId, SessionCatalog catalog,
        SnapshotService snapshots, SessionWatches watches, HttpContext context)
    {
        var ct = context.RequestAborted;
        if (string.IsNullOrEmpty(sessionId) || !SessionIds.Session().IsMatch(sessionId))
        {
            throw GatewayException.Invalid("sessionId", "must be an opencode session id ('ses_' followed by letters and digits).");
        }

        var (client, record) = await catalog.AuthorizeAsync(GatewayUser.From(context.User), sessionId, upstream: null, ct);
        if (!context.Request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase))
        {
            var snapshot = await snapshots.BuildAsync(new SessionKey(client.UpstreamId, sessionId), record?.ToContract(), ct);
            return TypedResults.Ok(new
            {
                session = snapshot.Session, messages = snapshot.Messages, earlier = snapshot.Earlier, status = snapshot.Status,
                permissions = snapshot.Permissions, questions = snapshot.Questions, children = snapshot.Children,
                metadata = snapshot.Metadata, epoch = snapshot.Epoch, seq = snapshot.Seq, gaps = snapshot.Gaps,
            });
        }

        var header = context.Request.Headers["Last-Event-ID"].ToString();
        var position = ParsePosition(string.IsNullOrEmpty(header) ? lastEventId : header);
        await client.GetSessionAsync(sessionId, ct); // a 404 now, as problem details, not mid-stream
        var watch = await watches.SubscribeAsync(client, sessionId, ct);
        return TypedResults.ServerSentEvents(Run(watch, watches, position ?? new StreamPosition(0, 0), ct));
    }

    private static async IAsyncEnumerable<SseItem<object>> Run(SessionWatch watch, SessionWatches watches, StreamPosition? from,
        [EnumeratorCancellation] CancellationToken ct)
    {
        await using (watch)
        {
            var items = new ChatStream(watch, watches).ReadAsync(from, watch.SubscribedAt, ct).WithCancellation(ct).ConfigureAwait(false);
            await using var enumerator = items.GetAsyncEnumerator();
            while (true)
            {
                SseItem<object>? failure = null;
                try
                {
                    if (!await enumerator.MoveNextAsync())
                    {
                        yield break;
                    }
                }
                catch (Exception e) when (e is GatewayException or SlowSubscriberException)
                {
                    // Mid-stream failures end the stream with an error event; the client resumes with Last-Event-ID.
                    var code = e is GatewayException g ? g.Code : "slow_consumer";
                    failure = new SseItem<object>(new ChatErrorData(watch.SessionId, code, e.Message), ChatEvents.Error);
                }

                if (failure is { } error)
                {
                    yield return error;
                    yield break;
                }

                yield return enumerator.Current;
            }
        }
    }

    /// <summary><c>{epoch}-{seq}</c>, as sent in <c>id:</c>.</summary>
    internal static StreamPosition? ParsePosition(string? id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return null;
        }

        var dash = id.IndexOf('-');
        if (dash <= 0 || !long.TryParse(id.AsSpan(0, dash), out var epoch) || !long.TryParse(id.AsSpan(dash + 1), out var seq) || seq < 0)
        {
            throw GatewayException.Invalid("Last-Event-ID", "must be '{epoch}-{seq}' as sent in the stream's ids.");
        }

        return new StreamPosition(epoch, seq);
    }
}
