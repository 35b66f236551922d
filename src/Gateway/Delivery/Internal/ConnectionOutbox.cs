using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Delivery.Internal;

/// <summary>
/// The messages waiting to be written to one connection. Senders never wait. When nothing is in flight the sender
/// writes into the connection's pipe itself, which completes at once unless the transport applies backpressure; only
/// then do later messages queue, and one drain loop writes them in order. A connection whose queue passes its bounds
/// is aborted (it recovers with <c>since</c>).
/// </summary>
internal sealed class ConnectionOutbox(HubConnectionContext connection, int maxMessages, long maxBytes, GatewayMetrics metrics, ILogger logger)
{
    private readonly Queue<(SerializedHubMessage Message, int Size)> _queue = new();
    private long _queuedBytes;
    private long _messages;
    // True while a write is in flight or the drain loop runs: new messages must queue behind it to keep order.
    private bool _writing;
    private bool _closed;

    public HubConnectionContext Connection { get; } = connection;

    /// <summary>Groups this connection is in, maintained by the lifetime manager under its own lock.</summary>
    public HashSet<string> Groups { get; } = new(StringComparer.Ordinal);

    public void Enqueue(SerializedHubMessage message)
    {
        var overflow = false;
        lock (_queue)
        {
            if (_closed)
            {
                return;
            }

            if (_writing)
            {
                // Serialised once per protocol and cached inside the message: every connection of a group shares the bytes.
                var size = message.GetSerializedMessage(Connection.Protocol).Length;
                if (_queue.Count < maxMessages && _queuedBytes + size <= maxBytes)
                {
                    _queue.Enqueue((message, size));
                    _queuedBytes += size;
                    _messages++;
                    return;
                }

                _closed = overflow = true;
                _queue.Clear();
                _queuedBytes = 0;
            }
            else
            {
                _writing = true;
                _messages++;
            }
        }

        if (overflow)
        {
            metrics.SlowConsumerDropped();
            OutboxLog.SlowConsumer(logger, Connection.ConnectionId, maxMessages, maxBytes);
            Connection.Abort();
            return;
        }

        // Nothing in flight: write on the sender's thread. This saves a thread-pool hop per message per connection,
        // which is most of the cost when one event goes to many connections.
        ValueTask write;
        try
        {
            write = Connection.WriteAsync(message);
        }
        catch (Exception e)
        {
            Fail(e);
            return;
        }

        if (!write.IsCompleted)
        {
            _ = DrainAsync(write);
            return;
        }

        try
        {
            write.GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            Fail(e);
            return;
        }

        lock (_queue)
        {
            if (_closed || _queue.Count == 0)
            {
                _writing = false;
                return;
            }
        }

        // Others queued behind this write meanwhile: leave the sender's stack and let the drain loop write them.
        _ = DrainAsync(YieldAsync());
    }

    /// <summary>Messages this outbox took (written or queued) and what it holds now; the count stops growing once closed.</summary>
    public (long Messages, int QueuedMessages, long QueuedBytes) Counts
    {
        get
        {
            lock (_queue)
            {
                return (_messages, _queue.Count, _queuedBytes);
            }
        }
    }

    public void Close()
    {
        lock (_queue)
        {
            _closed = true;
            _queue.Clear();
            _queuedBytes = 0;
        }
    }

    private static async ValueTask YieldAsync() => await Task.Yield();

    // Waits for the write in flight, then writes whatever queued behind it, in order, until the queue is empty.
    private async Task DrainAsync(ValueTask inFlight)
    {
        try
        {
            await inFlight;
            while (true)
            {
                SerializedHubMessage message;
                lock (_queue)
                {
                    if (_closed || !_queue.TryDequeue(out var next))
                    {
                        _writing = false;
                        return;
                    }

                    message = next.Message;
                    _queuedBytes -= next.Size;
                }

                await Connection.WriteAsync(message);
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private void Fail(Exception e)
    {
        OutboxLog.WriteFailed(logger, Connection.ConnectionId, e);
        Close();
    }
}
