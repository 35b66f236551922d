using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Streaming;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.AiSdk;

/// <summary>
/// Writes one answer of a session as the AI SDK's UI message stream (SSE <c>data:</c> chunks, then <c>[DONE]</c>),
/// from an in-process subscription to the session's events: the same fan-out as the hub and <c>/api/chat</c>, no
/// upstream subscription of its own.
/// </summary>
internal sealed class AiSdkChatStreams(
    LiveSessionRegistry live,
    SessionSubscriptions subscriptions,
    SnapshotBuilder snapshots,
    IOptions<GatewayOptions> options,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<AiSdkChatStreams> logger)
{
    /// <summary>A comment line this often keeps proxies from closing a quiet stream (the AI SDK ignores comments).</summary>
    internal static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(15);

    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    /// <summary>Subscribes to the session and counts as a watcher, atomically with reading its position.</summary>
    public Watch Subscribe(OpencodeClient client, string sessionId)
    {
        var (subscription, position) = live.Use(client.UpstreamId, sessionId, session =>
        {
            session.Watchers++;
            return (subscriptions.Add(session.GroupName, options.Value.Outbox.MaxQueuedMessages), new StreamPosition(session.Epoch, session.Seq));
        });
        return new Watch(this, client, sessionId, subscription, position);
    }

    /// <summary>A snapshot taken after subscribing, so no event falls between it and the subscription.</summary>
    public Task<SessionSnapshot> SnapshotAsync(Watch watch, CancellationToken ct) =>
        snapshots.BuildAsync(watch.Client, watch.SessionId, metadata: null, ct);

    /// <summary>
    /// Streams the answer until the session is idle: after a prompt (<paramref name="restateFrom"/> null: the events
    /// after the subscription, ending at the first idle after busy), or on resume (the answer in <paramref
    /// name="restateFrom"/> restated from its start, then live).
    /// </summary>
    public async Task WriteAsync(HttpContext context, Watch watch, SessionSnapshot? restateFrom)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        var ct = stopping.Token;
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["x-vercel-ai-ui-message-stream"] = "v1";
        response.Headers["x-accel-buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        var mapper = new UiMessageMapper(id => live.Use(watch.Client.UpstreamId, watch.SessionId, s => s.RoleOf(id)));
        var chunks = new List<UiMessageChunk>();
        var (epoch, seq) = (watch.SubscribedAt.Epoch, watch.SubscribedAt.Seq);
        var busy = false;
        var idle = false;
        if (restateFrom is not null)
        {
            Restate(restateFrom);
        }

        try
        {
            await response.StartAsync(ct);
            while (!idle)
            {
                await WriteChunksAsync(response, chunks, ct);
                var next = await ReadAsync(watch.Subscription, ct);
                if (next is null)
                {
                    await response.Body.WriteAsync(KeepAlive, ct);
                    await response.Body.FlushAsync(ct);
                }
                else if (next is SessionSnapshot pushed)
                {
                    if (pushed.Epoch != epoch || pushed.Seq > seq)
                    {
                        Restate(pushed);
                    }
                }
                else if (next is SessionEvent evt)
                {
                    if (evt.Epoch != epoch)
                    {
                        Restate(await SnapshotAsync(watch, ct)); // continuity lost upstream
                    }
                    else if (evt.Seq > seq)
                    {
                        seq = evt.Seq;
                        if (!mapper.Apply(evt, chunks))
                        {
                            Restate(await SnapshotAsync(watch, ct)); // text this stream never saw
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

        void Restate(SessionSnapshot snapshot)
        {
            (epoch, seq) = (snapshot.Epoch, snapshot.Seq);
            mapper.Restate(LatestAnswer(snapshot), snapshot.Permissions, chunks);
            var status = UiMessageMapper.String(snapshot.Status, "type");
            busy |= status is "busy" or "retry";
            idle = status == "idle" && (busy || mapper.Started);
        }
    }

    /// <summary>Whether the session is answering (busy or retrying) in the snapshot.</summary>
    public static bool IsAnswering(SessionSnapshot snapshot) => UiMessageMapper.String(snapshot.Status, "type") is "busy" or "retry";

    /// <summary>The assistant messages after the last user message.</summary>
    internal static IEnumerable<MessageWithParts> LatestAnswer(SessionSnapshot snapshot)
    {
        var lastUser = -1;
        for (var i = 0; i < snapshot.Messages.Count; i++)
        {
            if (UiMessageMapper.String(snapshot.Messages[i].Info, "role") == "user")
            {
                lastUser = i;
            }
        }

        return snapshot.Messages.Skip(lastUser + 1).Where(m => UiMessageMapper.String(m.Info, "role") == "assistant");
    }

    private async Task<object?> ReadAsync(SessionSubscriptions.Subscription subscription, CancellationToken ct)
    {
        using var keepAlive = new CancellationTokenSource(KeepAliveInterval, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, keepAlive.Token);
        try
        {
            return await subscription.Reader.ReadAsync(linked.Token);
        }
        catch (OperationCanceledException) when (keepAlive.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            return null;
        }
        catch (System.Threading.Channels.ChannelClosedException e) when (e.InnerException is SlowSubscriberException slow)
        {
            throw slow;
        }
    }

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

    private void Release(Watch watch)
    {
        watch.Subscription.Dispose();
        live.Use(watch.Client.UpstreamId, watch.SessionId, session => session.Watchers = Math.Max(0, session.Watchers - 1));
    }

    public sealed class Watch(AiSdkChatStreams owner, OpencodeClient client, string sessionId,
        SessionSubscriptions.Subscription subscription, StreamPosition subscribedAt) : IDisposable
    {
        private int _disposed;

        public OpencodeClient Client { get; } = client;
        public string SessionId { get; } = sessionId;
        public SessionSubscriptions.Subscription Subscription { get; } = subscription;
        public StreamPosition SubscribedAt { get; } = subscribedAt;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.Release(this);
            }
        }
    }
}
