using OpencodeGateway.Contracts;

namespace OpencodeGateway.Sequencing;

/// <summary>The last events of one session, bounded by count and by (estimated) bytes. Not thread-safe.</summary>
internal sealed class ReplayLog(int maxEvents, long maxBytes)
{
    private readonly Queue<(SessionEvent Event, int Size)> _events = new();
    private long _bytes;

    public int Count => _events.Count;

    public long Bytes => _bytes;

    public void Append(SessionEvent evt, int size)
    {
        _events.Enqueue((evt, size));
        _bytes += size;
        while (_events.Count > maxEvents || (_bytes > maxBytes && _events.Count > 1))
        {
            _bytes -= _events.Dequeue().Size;
        }
    }

    public void Clear()
    {
        _events.Clear();
        _bytes = 0;
    }

    /// <summary>Every event after <paramref name="seq"/>, when the log still reaches back that far.</summary>
    public bool TryGetAfter(long seq, long lastSeq, out List<SessionEvent> events)
    {
        events = [];
        if (seq == lastSeq)
        {
            return true;
        }

        if (_events.Count == 0 || _events.Peek().Event.Seq > seq + 1)
        {
            return false;
        }

        foreach (var (evt, _) in _events)
        {
            if (evt.Seq > seq)
            {
                events.Add(evt);
            }
        }

        return true;
    }
}
