namespace OpencodeGateway.Ingest.Internal;

/// <summary>
/// A read-only stream wrapper that cancels <see cref="Stalled"/> when no byte arrived for the stall timeout: every
/// read pushes the deadline out again.
/// </summary>
internal sealed class StallDetectingStream(Stream inner, TimeSpan stallTimeout, TimeProvider time) : Stream
{
    private readonly CancellationTokenSource _stall = new(stallTimeout, time);

    public CancellationToken Stalled => _stall.Token;

    /// <summary><see cref="TimeProvider.GetTimestamp"/> when the last read returned: when the bytes being parsed arrived.</summary>
    public long LastReadTimestamp { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stall.Token);
        var read = await inner.ReadAsync(buffer, linked.Token);
        LastReadTimestamp = time.GetTimestamp();
        _stall.CancelAfter(stallTimeout);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stall.Dispose();
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
