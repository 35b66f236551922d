namespace OpencodeGateway.Sequencing;

/// <summary>
/// Hands out epochs that never repeat, also across restarts of the gateway: seeded with the start time in
/// microseconds, then incremented. They stay below 2^53, so JavaScript clients hold them exactly.
/// </summary>
public sealed class EpochSource(TimeProvider time)
{
    private long _last = time.GetUtcNow().ToUnixTimeMilliseconds() * 1000;

    public long Next() => Interlocked.Increment(ref _last);
}
