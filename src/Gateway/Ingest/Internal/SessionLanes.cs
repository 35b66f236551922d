using System.Threading.Channels;

namespace OpencodeGateway.Ingest.Internal;

/// <summary>
/// One connection's events spread over ordered lanes by session: the pump only reads and splits the stream, and each
/// lane's worker hands its events to the sink one after another. A session always takes the same lane, so its events
/// keep the stream's order while sessions on other lanes are sequenced, stored and delivered beside it. A lane is
/// bounded: when one is full the pump waits, as it waited for the sink before.
/// </summary>
internal sealed class SessionLanes : IAsyncDisposable
{
    // Enough to ride out a slow history write on one lane without holding the reader back, small enough to stay cheap.
    private const int LaneCapacity = 512;

    private readonly IUpstreamEventSink _sink;
    private readonly Action<long> _dispatched;
    private readonly Channel<Posted>[] _lanes;
    private readonly Task[] _workers;
    private readonly CancellationTokenSource _faulted = new();
    private Exception? _fault;

    /// <param name="count">How many lanes (and workers).</param>
    /// <param name="sink">Where each lane's events go, in order.</param>
    /// <param name="dispatched">Called with an event's read timestamp once the sink has taken it.</param>
    public SessionLanes(int count, IUpstreamEventSink sink, Action<long> dispatched)
    {
        _sink = sink;
        _dispatched = dispatched;
        _lanes = new Channel<Posted>[count];
        _workers = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var lane = Channel.CreateBounded<Posted>(new BoundedChannelOptions(LaneCapacity)
            {
                SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait,
            });
            _lanes[i] = lane;
            _workers[i] = Task.Run(() => RunAsync(lane.Reader));
        }
    }

    /// <summary>Cancelled when the sink failed on some lane: the connection is given up, as a failed sink call did.</summary>
    public CancellationToken Faulted => _faulted.Token;

    /// <summary>The first failure of the sink on any lane, if any.</summary>
    public Exception? Fault => Volatile.Read(ref _fault);

    /// <summary>Queues <paramref name="e"/> on its session's lane; waits only while that lane is full.</summary>
    public ValueTask PostAsync(UpstreamStream stream, UpstreamEvent e, long readTimestamp, CancellationToken ct)
    {
        var lane = _lanes[LaneOf(e.SessionId!, _lanes.Length)].Writer;
        var posted = new Posted(stream, e, readTimestamp, ct);
        return lane.TryWrite(posted) ? ValueTask.CompletedTask : lane.WriteAsync(posted, ct);
    }

    /// <summary>The lane a session's events take (stable for the process's life).</summary>
    internal static int LaneOf(string sessionId, int count) => (int)((uint)StringComparer.Ordinal.GetHashCode(sessionId) % (uint)count);

    /// <summary>
    /// Takes no more events and waits until every queued one was handed to the sink (or skipped once its token was
    /// cancelled). Calling it again waits for nothing new. (<see cref="_faulted"/> has no timer and no wait handle: it
    /// holds nothing to release.)
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var lane in _lanes)
        {
            lane.Writer.TryComplete();
        }

        await Task.WhenAll(_workers);
    }

    private async Task RunAsync(ChannelReader<Posted> lane)
    {
        while (await lane.WaitToReadAsync())
        {
            while (lane.TryRead(out var posted))
            {
                // Read but not sequenced before the connection ended: lost like the events not read yet (the next
                // connection starts a new epoch that marks where the text may be missing).
                if (posted.Token.IsCancellationRequested)
                {
                    continue;
                }

                try
                {
                    await _sink.OnEventAsync(posted.Stream, posted.Event, posted.Token);
                    _dispatched(posted.ReadTimestamp);
                }
                catch (OperationCanceledException) when (posted.Token.IsCancellationRequested)
                {
                }
                catch (Exception failure)
                {
                    if (Interlocked.CompareExchange(ref _fault, failure, null) is null)
                    {
                        _faulted.Cancel();
                    }
                }
            }
        }
    }

    private readonly record struct Posted(UpstreamStream Stream, UpstreamEvent Event, long ReadTimestamp, CancellationToken Token);
}
