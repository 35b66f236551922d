using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using OpencodeGateway.Contracts;
using OpencodeGateway.Delivery;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// Writes one answer of a session as the AI SDK's UI message stream (SSE <c>data:</c> chunks, then <c>[DONE]</c>),
/// from an in-process subscription to the session's events: the same fan-out as the hub and <c>/api/chat</c>, no
/// upstream subscription of its own.
/// </summary>
internal sealed class AiSdkChatStreams(
    LiveSessionRegistry live,
    SessionWatches watches,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<AiSdkChatStreams> logger)
{
    /// <summary>A comment line this often keeps proxies from closing a quiet stream (the AI SDK ignores comments).</summary>
    internal static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);

    /// <summary>How long an answering route waits for its answer to show in the session's events.</summary>
    internal static readonly TimeSpan AnswerShownTimeout = TimeSpan.FromSeconds(10);

    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    /// <summary>Watches the session's events on this node (<see cref="SessionWatches.SubscribeAsync"/>).</summary>
    public Task<SessionWatch> SubscribeAsync(OpencodeClient client, string sessionId, CancellationToken ct) =>
        watches.SubscribeAsync(client, sessionId, ct);

    /// <summary>A snapshot taken after subscribing, so no event falls between it and the subscription.</summary>
    public Task<SessionSnapshot> SnapshotAsync(SessionWatch watch, CancellationToken ct) => watches.SnapshotAsync(watch, ct);

    /// <summary>The latest answer (<see cref="SessionWatches.LatestAnswerAsync"/>).</summary>
    public Task<IReadOnlyList<MessageWithParts>> LatestAnswerAsync(OpencodeClient client, SessionSnapshot snapshot, CancellationToken ct) =>
        watches.LatestAnswerAsync(client, snapshot, ct);

    /// <summary>A window of messages with no answer cut in two (<see cref="SessionWatches.WholeAnswersAsync"/>).</summary>
    public Task<(IReadOnlyList<MessageWithParts> Messages, EarlierMessages? Earlier)> WholeAnswersAsync(OpencodeClient client,
        string sessionId, IReadOnlyList<MessageWithParts> messages, EarlierMessages? earlier, CancellationToken ct) =>
        watches.WholeAnswersAsync(client, sessionId, messages, earlier, ct);

    /// <summary>
    /// Streams the answer until the session is idle or waits for the user (a permission request or a question shown in
    /// the stream): after a prompt (<paramref name="restateFrom"/> null: the events after the subscription, ending at
    /// the first idle after busy), on resume (the answer in <paramref name="restateFrom"/> restated from its start,
    /// then live), or continuing the app's copy of the answer (<paramref name="continuing"/>, from <paramref
    /// name="restateFrom"/>).
    /// </summary>
    public async Task WriteAsync(HttpContext context, SessionWatch watch, SessionSnapshot? restateFrom, Continuation? continuing = null)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var ct = stopping.Token;
        // Roles of messages this stream never saw: from the live state where this node sequences the session.
        var mapper = new UiMessageMapper(watch.SessionId, id => live.TryGet(watch.Key, out _) ? live.Use(watch.Key, s => s.RoleOf(id)) : null);
        var chunks = new List<UiMessageChunk>();
        var (epoch, seq) = (watch.SubscribedAt.Epoch, watch.SubscribedAt.Seq);
        var busy = false;
        var idle = false;
        if (restateFrom is not null)
        {
            await RestateAsync(restateFrom, continuing); // before the response starts: a failure is a problem response
        }

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["x-vercel-ai-ui-message-stream"] = "v1";
        response.Headers["x-accel-buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        try
        {
            await response.StartAsync(ct);
            while (!idle && !mapper.WaitingForUser)
            {
                await WriteChunksAsync(response, chunks, ct);
                var next = await watch.ReadAsync(KeepAliveInterval, ct);
                if (next is null)
                {
                    await response.Body.WriteAsync(KeepAlive, ct);
                    await response.Body.FlushAsync(ct);
                }
                else if (next is SessionSnapshot pushed)
                {
                    if (pushed.Epoch != epoch || pushed.Seq > seq)
                    {
                        await RestateAsync(pushed, continuation: null);
                    }
                }
                else if (next is SessionEvent evt)
                {
                    if (evt.Epoch != epoch)
                    {
                        await RestateAsync(await SnapshotAsync(watch, ct), continuation: null); // continuity lost upstream
                    }
                    else if (evt.Seq > seq)
                    {
                        seq = evt.Seq;
                        if (!mapper.Apply(evt, chunks))
                        {
                            await RestateAsync(await SnapshotAsync(watch, ct), continuation: null); // text this stream never saw
                        }
                        else if (evt.Type == SessionEventTypes.Status)
                        {
                            var status = evt.Status is { } s ? UiMessageMapper.String(s, "type") : null;
                            busy |= status is "busy" or "retry";
                            idle = status == "idle" && (busy || mapper.Started);
                        }
                    }
                }
            }

            mapper.Finish(chunks);
        }
        catch (Exception e) when (e is GatewayException or SlowSubscriberException && !ct.IsCancellationRequested)
        {
            // Mid-stream failures end the stream with an error chunk; the client resumes (GET …/stream).
            var code = e is GatewayException g ? g.Code : "slow_consumer";
            AiSdkLog.StreamFailed(logger, watch.SessionId, code, e.Message);
            mapper.Fail($"{code}: {e.Message}", chunks);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            if (lifetime.ApplicationStopping.IsCancellationRequested)
            {
                context.Abort(); // a cut stream, not a finished one: the client resumes on another node
            }

            return;
        }

        await WriteChunksAsync(response, chunks, ct);
        await response.Body.WriteAsync(Done, ct);
        await response.Body.FlushAsync(ct);

        async Task RestateAsync(SessionSnapshot snapshot, Continuation? continuation)
        {
            var answer = continuation?.Answer ?? await LatestAnswerAsync(watch.Client, snapshot, ct);
            (epoch, seq) = (snapshot.Epoch, snapshot.Seq);
            if (continuation is null)
            {
                mapper.Restate(answer, snapshot, chunks);
            }
            else
            {
                mapper.Continue(continuation.Client, continuation.Answered, answer, snapshot, chunks);
            }

            var status = UiMessageMapper.String(snapshot.Status, "type");
            busy |= status is "busy" or "retry";
            idle = status == "idle" && (busy || mapper.Started);
        }
    }

    /// <summary>
    /// Waits, at most <see cref="AnswerShownTimeout"/>, until the session's events (from <paramref name="watch"/>'s
    /// subscription, taken before the answer was sent) show request <paramref name="requestId"/> answered: opencode
    /// accepts an answer before its event reaches the gateway, and a resume in between would show the request again.
    /// </summary>
    public async Task WaitUntilAnsweredAsync(SessionWatch watch, string requestId, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(AnswerShownTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
        try
        {
            object next;
            do
            {
                next = await watch.ReadAsync(linked.Token);
            }
            while (!Answers(next, requestId));
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            AiSdkLog.AnswerNotShown(logger, watch.SessionId, requestId);
        }
        catch (SlowSubscriberException)
        {
            AiSdkLog.AnswerNotShown(logger, watch.SessionId, requestId);
        }
    }

    /// <summary>An event or snapshot that shows request <paramref name="requestId"/> no longer pending.</summary>
    private static bool Answers(object next, string requestId) => next switch
    {
        SessionEvent { Type: SessionEventTypes.PermissionReplied } e => e.RequestId == requestId,
        SessionEvent { Type: SessionEventTypes.QuestionReplied or SessionEventTypes.QuestionRejected, Question: { } question } =>
            UiMessageMapper.String(question, "id") == requestId,
        SessionSnapshot snapshot => !snapshot.Permissions.Concat(snapshot.Questions).Any(r => UiMessageMapper.String(r, "id") == requestId),
        _ => false,
    };

    /// <summary>Whether the session is answering (busy or retrying) in the snapshot.</summary>
    public static bool IsAnswering(SessionSnapshot snapshot) => UiMessageMapper.String(snapshot.Status, "type") is "busy" or "retry";

    private static async Task WriteChunksAsync(HttpResponse response, List<UiMessageChunk> chunks, CancellationToken ct)
    {
        if (chunks.Count == 0)
        {
            return;
        }

        var buffer = new StringBuilder();
        foreach (var chunk in chunks)
        {
            buffer.Append("data: ").Append(JsonSerializer.Serialize(chunk, UiMessageChunk.JsonOptions)).Append("\n\n");
        }

        chunks.Clear();
        await response.WriteAsync(buffer.ToString(), ct);
        await response.Body.FlushAsync(ct);
    }

    /// <summary>A POST that continues the app's copy of the answer (<see cref="UiMessageMapper.Continue"/>).</summary>
    /// <param name="Answer">The latest answer, whose id the app's message has.</param>
    /// <param name="Answered">What this POST answered: request id → reply (or <c>replied</c>/<c>rejected</c>) and answers.</param>
    public sealed record Continuation(ClientAnswer Client, IReadOnlyList<MessageWithParts> Answer,
        IReadOnlyDictionary<string, (string Status, JsonElement? Answers)> Answered);
}
