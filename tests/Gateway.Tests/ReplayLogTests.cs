using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;

namespace OpencodeGateway.Tests;

public class ReplayLogTests
{
    private static SessionEvent Event(long seq) => new() { Upstream = "u", SessionId = "ses_a", Epoch = 1, Seq = seq, Type = "status" };

    [Fact]
    public void Returns_exactly_the_events_after_a_position()
    {
        var log = new ReplayLog(100, long.MaxValue);
        for (var i = 1; i <= 10; i++)
        {
            log.Append(Event(i), 10);
        }

        Assert.True(log.TryGetAfter(6, 10, out var events));
        Assert.Equal([7L, 8, 9, 10], events.Select(e => e.Seq));
        Assert.True(log.TryGetAfter(10, 10, out var none));
        Assert.Empty(none);
        Assert.True(log.TryGetAfter(0, 10, out var all));
        Assert.Equal(10, all.Count);
    }

    [Fact]
    public void Is_bounded_by_count_and_refuses_positions_it_no_longer_reaches()
    {
        var log = new ReplayLog(5, long.MaxValue);
        for (var i = 1; i <= 20; i++)
        {
            log.Append(Event(i), 10);
        }

        Assert.Equal(5, log.Count);
        Assert.True(log.TryGetAfter(15, 20, out var events));
        Assert.Equal([16L, 17, 18, 19, 20], events.Select(e => e.Seq));
        Assert.False(log.TryGetAfter(14, 20, out _));
    }

    [Fact]
    public void Is_bounded_by_bytes()
    {
        var log = new ReplayLog(1000, 1000);
        for (var i = 1; i <= 100; i++)
        {
            log.Append(Event(i), 100);
        }

        Assert.True(log.Bytes <= 1000);
        Assert.Equal(10, log.Count);
        Assert.False(log.TryGetAfter(50, 100, out _));
    }

    [Fact]
    public void Empty_log_reaches_only_the_current_position()
    {
        var log = new ReplayLog(10, 1000);
        Assert.True(log.TryGetAfter(3, 3, out _));
        Assert.False(log.TryGetAfter(2, 3, out _));
    }
}
