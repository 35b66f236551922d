using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.SignalR.Internal;

/// <summary>
/// The messages waiting to be written to one connection. Senders never wait: they enqueue and return; one drain loop
/// per connection writes in order. A connection whose queue passes its bounds is aborted (it recovers with <c>since</c>).
/// </summary>
internal sealed class ConnectionOutbox(HubConnectionContext connection, int maxMessages, long maxBytes, GatewayMetrics metrics, ILogger logger)
{
    private readonly Queue<(SerializedHubMessage Message, int Size)> _queue = new();
    private long _queuedBytes;
    private bool _draining;
    private bool _closed;

    public HubConnectionContext Connection { get; } = connection;

    /// <summary>Groups this connection is in, maintained by the lifetime manager under its own lock.</summary>
    public HashSet<string> Groups { get; } = new(StringComparer.Ordinal);

    public void Enqueue(SerializedHubMessage message)
    {
        // Serialised once per protocol and cached inside the message: every connection of a group shares the bytes.
        var size = message.GetSerializedMessage(Connection.Protocol).Length;
        lock (_queue)
        {
            if (_closed)
            {
                return;
            }

            if (_queue.Count < maxMessages && _queuedBytes + size <= maxBytes)
            {
                _queue.Enqueue((message, size));
                _queuedBytes += size;
                if (!_draining)
                {
                    _draining = true;
                    _ = DrainAsync();
                }

                return;
            }

            _closed = true;
            _queue.Clear();
            _queuedBytes = 0;
        }

        metrics.SlowConsumerDropped();
        Log.SlowConsumer(logger, Connection.ConnectionId, maxMessages, maxBytes);
        Connection.Abort();
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

    private async Task DrainAsync()
    {
        // Leave the sender's stack at once: the pump must never run a connection's write.
        await Task.Yield();
        while (true)
        {
            SerializedHubMessage message;
            lock (_queue)
            {
                if (_closed || !_queue.TryDequeue(out var next))
                {
                    _draining = false;
                    return;
                }

                message = next.Message;
                _queuedBytes -= next.Size;
            }

            try
            {
                await Connection.WriteAsync(message);
            }
            catch (Exception e)
            {
                Log.WriteFailed(logger, Connection.ConnectionId, e);
                Close();
                return;
            }
        }
    }
}
