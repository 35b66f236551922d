using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Streaming;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Chat;

/// <summary>
/// <c>/api/chat</c> for clients that do not speak SignalR. It rides on the same fan-out as the hub (no upstream
/// subscription of its own).
/// <list type="bullet">
/// <item><c>POST {message, sessionId?}</c>: sends the prompt (creating a session when none is given) and streams the
/// answer as SSE until the session is idle.</item>
/// <item><c>GET ?sessionId=</c> with <c>Accept: text/event-stream</c>: resumes a stream after <c>Last-Event-ID</c>
/// (header, or <c>lastEventId</c> query) until the session is idle; otherwise answers
/// <c>{session, messages, status, metadata}</c>.</item>
/// </list>
/// </summary>
internal static class ChatEndpoints
{
    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/chat");
        group.MapPost("", PostAsync);
        group.MapGet("", GetAsync);
        return endpoints;
    }

    private static async Task<IResult> PostAsync(ChatRequest? request, SessionService sessions, ChatStreams streams, HttpContext context)
    {
        if (request is null || string.IsNullOrWhiteSpace(request.Message))
        {
            return Problem(GatewayException.BadRequest("message is required."), "message");
        }

        var ct = context.RequestAborted;
        try
        {
            OpencodeClient client;
            string sessionId;
            if (string.IsNullOrEmpty(request.SessionId))
            {
                var title = request.Message.Length <= 60 ? request.Message : request.Message[..60];
                var info = await sessions.CreateAsync(upstream: null, title, ct);
                sessionId = info.GetProperty("id").GetString()!;
                client = await sessions.ResolveAsync(sessionId, upstream: null, ct);
            }
            else
            {
                sessionId = request.SessionId;
                client = await sessions.ResolveAsync(sessionId, upstream: null, ct);
                await client.GetSessionAsync(sessionId, ct); // 404 now, as problem details, not mid-stream
            }

            var watch = streams.Subscribe(client, sessionId);
            try
            {
                await sessions.PromptAsync(client, new PromptRequest(sessionId, request.Message), ct);
            }
            catch
            {
                watch.Dispose();
                throw;
            }

            return TypedResults.ServerSentEvents(Run(watch, from: null, ct));
        }
        catch (GatewayException e)
        {
            return Problem(e, e.Code == GatewayErrorCodes.BadRequest ? "message" : null);
        }
    }

    private static async Task<IResult> GetAsync(string? sessionId, string? lastEventId, SessionService sessions,
        SnapshotBuilder snapshots, ChatStreams streams, HttpContext context)
    {
        var ct = context.RequestAborted;
        try
        {
            SessionService.ValidateSessionId(sessionId);
            var client = await sessions.ResolveAsync(sessionId!, upstream: null, ct);
            if (!context.Request.Headers.Accept.ToString().Contains("text/event-stream", StringComparison.OrdinalIgnoreCase))
            {
                var snapshot = await snapshots.BuildAsync(client, sessionId!, metadata: null, ct);
                return TypedResults.Ok(new
                {
                    session = snapshot.Session, messages = snapshot.Messages, status = snapshot.Status,
                    permissions = snapshot.Permissions, metadata = snapshot.Metadata, epoch = snapshot.Epoch, seq = snapshot.Seq,
                });
            }

            var header = context.Request.Headers["Last-Event-ID"].ToString();
            var position = ParsePosition(string.IsNullOrEmpty(header) ? lastEventId : header);
            await client.GetSessionAsync(sessionId!, ct);
            var watch = streams.Subscribe(client, sessionId!);
            return TypedResults.ServerSentEvents(Run(watch, position ?? new StreamPosition(0, 0), ct));
        }
        catch (GatewayException e)
        {
            return Problem(e, e.Code == GatewayErrorCodes.BadRequest ? "sessionId" : null);
        }
    }

    private static async IAsyncEnumerable<SseItem<object>> Run(ChatStreams.Watch watch, StreamPosition? from,
        [EnumeratorCancellation] CancellationToken ct)
    {
        using (watch)
        {
            var items = watch.Stream.ReadAsync(from, watch.SubscribedAt, ct).WithCancellation(ct).ConfigureAwait(false);
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
            throw GatewayException.BadRequest("Last-Event-ID must be '{epoch}-{seq}' as sent in the stream's ids.");
        }

        return new StreamPosition(epoch, seq);
    }

    internal static IResult Problem(GatewayException e, string? field = null)
    {
        var status = e.Code switch
        {
            GatewayErrorCodes.SessionNotFound or GatewayErrorCodes.PermissionNotFound => StatusCodes.Status404NotFound,
            GatewayErrorCodes.BadRequest => StatusCodes.Status400BadRequest,
            GatewayErrorCodes.UpstreamUnavailable => StatusCodes.Status503ServiceUnavailable,
            GatewayErrorCodes.UpstreamError => StatusCodes.Status502BadGateway,
            GatewayErrorCodes.Unauthorized => StatusCodes.Status401Unauthorized,
            GatewayErrorCodes.Forbidden => StatusCodes.Status403Forbidden,
            GatewayErrorCodes.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
            _ => StatusCodes.Status500InternalServerError,
        };
        var extensions = new Dictionary<string, object?> { ["code"] = e.Code };
        if (field is not null && status == StatusCodes.Status400BadRequest)
        {
            extensions["errors"] = new Dictionary<string, string[]> { [field] = [e.Message] };
        }

        return TypedResults.Problem(detail: e.Message, statusCode: status, extensions: extensions);
    }
}

/// <summary>Creates the in-process watches behind <c>/api/chat</c> streams.</summary>
internal sealed class ChatStreams(LiveSessionRegistry live, SessionSubscriptions subscriptions, SnapshotBuilder snapshots,
    IOptions<GatewayOptions> options, TimeProvider time)
{
    /// <summary>Subscribes and counts as a watcher, atomically with reading the session's position.</summary>
    public Watch Subscribe(OpencodeClient client, string sessionId)
    {
        var (subscription, position) = live.Use(client.UpstreamId, sessionId, session =>
        {
            session.Watchers++;
            return (subscriptions.Add(session.GroupName, options.Value.Outbox.MaxQueuedMessages), new StreamPosition(session.Epoch, session.Seq));
        });
        var stream = new ChatStream(client, sessionId, subscription, live, snapshots, time);
        return new Watch(this, client.UpstreamId, sessionId, subscription, position, stream);
    }

    private void Release(string upstream, string sessionId, SessionSubscriptions.Subscription subscription)
    {
        subscription.Dispose();
        live.Use(upstream, sessionId, session => session.Watchers = Math.Max(0, session.Watchers - 1));
    }

    public sealed class Watch(ChatStreams owner, string upstream, string sessionId, SessionSubscriptions.Subscription subscription,
        StreamPosition subscribedAt, ChatStream stream) : IDisposable
    {
        private int _disposed;

        public string SessionId { get; } = sessionId;
        public StreamPosition SubscribedAt { get; } = subscribedAt;
        public ChatStream Stream { get; } = stream;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(upstream, SessionId, subscription);
            }
        }
    }
}
