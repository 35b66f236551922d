using System.Net.ServerSentEvents;
using System.Runtime.ExceptionServices;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Ingest.Internal;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Ingest;

/// <summary>
/// Holds the ONE event subscription (<c>GET /global/event</c>) of one upstream: parses it with <see cref="SseParser"/>,
/// treats silence longer than the stall timeout as a dead stream, reconnects with capped exponential backoff and jitter,
/// and hands every event to the <see cref="IUpstreamEventSink"/> through <see cref="StreamingOptions.SequencingWorkers"/>
/// ordered lanes chosen by session (<see cref="SessionLanes"/>): one session's events in the stream's order, sessions
/// in parallel.
/// </summary>
internal sealed class UpstreamEventPump(
    OpencodeClient upstream,
    StreamingOptions options,
    IUpstreamEventSink sink,
    UpstreamStreamState state,
    IHttpClientFactory httpClients,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger logger)
{
    private readonly Random _random = new();

    /// <summary>Reads the stream (reconnecting after every loss) under <paramref name="lease"/> until <paramref name="stoppingToken"/>.</summary>
    public async Task RunAsync(string lease, CancellationToken stoppingToken)
    {
        var connections = 0L;
        using var http = httpClients.CreateClient(upstream.EventStreamClientName);
        if (http.BaseAddress is null)
        {
            // Removed from the registry meanwhile (its client name is no longer configured): its pump is being stopped.
            return;
        }

        var url = new Uri(http.BaseAddress, "global/event");
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            string reason;
            try
            {
                reason = await ReadStreamAsync(http, url, () => attempt = 0, new UpstreamStream(upstream.UpstreamId, lease, ++connections), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
            {
                reason = e.Message;
            }
            catch (Exception e)
            {
                // A bug must not end the one subscription for good: log it and reconnect like any other loss.
                StreamingLog.PumpFailed(logger, upstream.UpstreamId, e);
                reason = e.GetType().Name;
            }

            await sink.OnStreamClosedAsync(upstream.UpstreamId, CancellationToken.None);
            state.Set(upstream.UpstreamId, connected: false, time.GetUtcNow(), reason);
            metrics.Reconnect(upstream.UpstreamId);
            var delay = ReconnectBackoff.Delay(attempt, options.ReconnectInitialDelay, options.ReconnectMaxDelay, _random);
            attempt++;
            StreamingLog.StreamLost(logger, upstream.UpstreamId, reason, attempt, (long)delay.TotalMilliseconds);
            using var reconnect = GatewayTelemetry.StartActivity("gateway.upstream.reconnect", upstream.UpstreamId)?.SetTag("gateway.reconnect.reason", reason).SetTag("gateway.reconnect.attempt", attempt);
            try
            {
                await Task.Delay(delay, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        // Stopping (or the lease was lost): what the last connection produced is stored before the lease goes.
        await sink.OnStreamClosedAsync(upstream.UpstreamId, CancellationToken.None);
        state.Set(upstream.UpstreamId, connected: false, time.GetUtcNow(), "not reading the stream");
    }

    /// <summary>Reads one connection of the stream until it ends; returns why it ended.</summary>
    private async Task<string> ReadStreamAsync(HttpClient http, Uri url, Action onConnected, UpstreamStream current,
        CancellationToken stoppingToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.ParseAdd("text/event-stream");
        HttpResponseMessage response;
        using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
        {
            // opencode can accept a connection and not answer for a while right after start: bound the wait.
            connectTimeout.CancelAfter(options.ConnectTimeout);
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, connectTimeout.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                return $"no response headers within {options.ConnectTimeout.TotalSeconds:0.#} s";
            }
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                return $"HTTP {(int)response.StatusCode} from {url}";
            }

            if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
            {
                return $"{url} is not an event stream ({response.Content.Headers.ContentType?.MediaType ?? "no content type"})";
            }

            await using var stream = new StallDetectingStream(await response.Content.ReadAsStreamAsync(stoppingToken),
                options.StallTimeout, time);
            // Disposed after the read token and before the response (the reverse of declaration): every event read is
            // handed to the sink, or skipped once the connection is given up, before the sink hears the stream closed.
            await using var lanes = new SessionLanes(options.SequencingWorkers, sink,
                read => metrics.EventDispatched(time.GetElapsedTime(read)));
            using var readToken = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, stream.Stalled, lanes.Faulted);
            var parser = SseParser.Create(stream, static (_, data) => OpencodeEventNormalizer.Normalize(data));
            try
            {
                await foreach (var item in parser.EnumerateAsync(readToken.Token))
                {
                    var e = item.Data;
                    switch (e.Kind)
                    {
                        case UpstreamEventKind.Heartbeat:
                            break;
                        case UpstreamEventKind.ServerConnected:
                            metrics.StreamConnected(upstream.UpstreamId);
                            state.Set(upstream.UpstreamId, connected: true, time.GetUtcNow());
                            StreamingLog.StreamConnected(logger, upstream.UpstreamId, url.ToString());
                            onConnected();
                            await sink.OnStreamConnectedAsync(current, readToken.Token);
                            break;
                        case UpstreamEventKind.Malformed:
                            metrics.MalformedEvent(upstream.UpstreamId);
                            StreamingLog.MalformedEvent(logger, upstream.UpstreamId, e.Problem!);
                            break;
                        case UpstreamEventKind.Ignored:
                            StreamingLog.IgnoredEvent(logger, upstream.UpstreamId, e.Type);
                            break;
                        default:
                            metrics.UpstreamEvent(upstream.UpstreamId);
                            await lanes.PostAsync(current, e, stream.LastReadTimestamp, readToken.Token);
                            break;
                    }
                }
            }
            catch (OperationCanceledException) when (lanes.Fault is { } fault && !stoppingToken.IsCancellationRequested)
            {
                // The sink failed on a lane: give the connection up as if the pump itself had failed.
                ExceptionDispatchInfo.Throw(fault);
            }
            catch (OperationCanceledException) when (stream.Stalled.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
            {
                StreamingLog.StreamStalled(logger, upstream.UpstreamId, options.StallTimeout.TotalSeconds);
                return $"stalled: no bytes for {options.StallTimeout.TotalSeconds:0.#} s";
            }

            // Whatever was read is sequenced before the stream counts as closed; a failure doing so is the pump's.
            await lanes.DisposeAsync();
            if (lanes.Fault is { } lateFault)
            {
                ExceptionDispatchInfo.Throw(lateFault);
            }

            return "the upstream closed the event stream";
        }
    }
}
