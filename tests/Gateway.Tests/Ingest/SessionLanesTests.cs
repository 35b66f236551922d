using System.Collections.Concurrent;
using OpencodeGateway.Ingest;
using OpencodeGateway.Ingest.Internal;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests.Ingest;

/// <summary>One connection's events over ordered lanes: each session's order kept, sessions independent.</summary>
public class SessionLanesTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);
    private static readonly UpstreamStream Stream = new("oc", "lease", 1);

    private static UpstreamEvent Delta(string session, int n) => new()
    {
        Kind = UpstreamEventKind.PartDelta, SessionId = session, MessageId = "msg_1", PartId = "prt_1", Field = "text", Delta = $"{n} ",
    };

    [Fact]
    public async Task Every_sessions_events_reach_the_sink_in_the_order_posted_while_sessions_run_side_by_side()
    {
        var sink = new RecordingSink(async e =>
        {
            // Uneven work per event, so lanes overtake one another.
            if (int.Parse(e.Delta!.TrimEnd()) % 7 == 0)
            {
                await Task.Delay(1);
            }
        });
        var sessions = Enumerable.Range(0, 40).Select(i => $"ses_{i:00}").ToArray();
        await using (var lanes = new SessionLanes(4, sink, _ => { }))
        {
            for (var n = 0; n < 300; n++)
            {
                foreach (var session in sessions)
                {
                    await lanes.PostAsync(Stream, Delta(session, n), 0, CancellationToken.None);
                }
            }
        }

        // Disposing waited for every event.
        foreach (var session in sessions)
        {
            Assert.Equal(Enumerable.Range(0, 300).Select(n => $"{n} "), sink.Of(session));
        }

        Assert.True(sink.MaxInFlight > 1, $"lanes never overlapped (max in flight {sink.MaxInFlight})");
        Assert.True(sink.MaxInFlight <= 4, $"more sink calls at once ({sink.MaxInFlight}) than lanes");
    }

    [Fact]
    public async Task A_session_whose_sink_call_hangs_holds_back_no_session_of_another_lane()
    {
        const int count = 4;
        var stuck = "ses_stuck";
        var others = Enumerable.Range(0, 200).Select(i => $"ses_{i}")
            .Where(s => SessionLanes.LaneOf(s, count) != SessionLanes.LaneOf(stuck, count)).Take(20).ToArray();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sink = new RecordingSink(e => e.SessionId == stuck ? new ValueTask(release.Task) : ValueTask.CompletedTask);
        var lanes = new SessionLanes(count, sink, _ => { });
        await lanes.PostAsync(Stream, Delta(stuck, 0), 0, CancellationToken.None);
        await lanes.PostAsync(Stream, Delta(stuck, 1), 0, CancellationToken.None);
        foreach (var session in others)
        {
            await lanes.PostAsync(Stream, Delta(session, 0), 0, CancellationToken.None);
        }

        await Eventually.HoldsAsync(() => others.All(s => sink.Of(s).Count == 1), "every other lane's session sequenced", Timeout);
        Assert.Equal(["0 "], sink.Of(stuck));

        release.SetResult();
        await lanes.DisposeAsync();
        Assert.Equal(["0 ", "1 "], sink.Of(stuck));
    }

    [Fact]
    public async Task A_failing_sink_call_faults_the_lanes_and_what_is_queued_after_it_is_skipped()
    {
        var failure = new InvalidOperationException("history unreachable");
        var sink = new RecordingSink(e => e.Delta == "1 " ? throw failure : ValueTask.CompletedTask);
        using var connection = new CancellationTokenSource();
        var lanes = new SessionLanes(1, sink, _ => { });
        using var reading = CancellationTokenSource.CreateLinkedTokenSource(connection.Token, lanes.Faulted);
        for (var n = 0; n < 3; n++)
        {
            await lanes.PostAsync(Stream, Delta("ses_a", n), 0, reading.Token);
        }

        await Eventually.HoldsAsync(() => lanes.Faulted.IsCancellationRequested, "the lanes faulted", Timeout);
        await lanes.DisposeAsync();
        Assert.Same(failure, lanes.Fault);
        // The event after the failure was read under the connection that was given up: skipped, not applied.
        Assert.Equal(["0 ", "1 "], sink.Of("ses_a"));
    }

    [Fact]
    public async Task Events_queued_when_the_connection_ends_are_skipped_and_the_dispatch_time_counts_only_those_taken()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sink = new RecordingSink(e => e.Delta == "0 " ? new ValueTask(release.Task) : ValueTask.CompletedTask);
        var dispatched = new ConcurrentQueue<long>();
        using var connection = new CancellationTokenSource();
        var lanes = new SessionLanes(1, sink, dispatched.Enqueue);
        for (var n = 0; n < 3; n++)
        {
            await lanes.PostAsync(Stream, Delta("ses_a", n), 100 + n, connection.Token);
        }

        await Eventually.HoldsAsync(() => sink.Of("ses_a").Count == 1, "the first event in the sink", Timeout);
        await connection.CancelAsync();
        release.SetResult();
        await lanes.DisposeAsync();
        Assert.Equal(["0 "], sink.Of("ses_a"));
        Assert.Equal([100L], dispatched);
    }

    /// <summary>Records what each session's sink calls saw, in order, and how many ran at once.</summary>
    private sealed class RecordingSink(Func<UpstreamEvent, ValueTask> work) : IUpstreamEventSink
    {
        private readonly ConcurrentDictionary<string, List<string>> _seen = new();
        private int _inFlight;
        private int _maxInFlight;

        public int MaxInFlight => Volatile.Read(ref _maxInFlight);

        public IReadOnlyList<string> Of(string session)
        {
            var list = _seen.GetOrAdd(session, _ => []);
            lock (list)
            {
                return [.. list];
            }
        }

        public ValueTask OnStreamConnectedAsync(UpstreamStream stream, CancellationToken ct) => ValueTask.CompletedTask;

        public async ValueTask OnEventAsync(UpstreamStream stream, UpstreamEvent e, CancellationToken ct)
        {
            var now = Interlocked.Increment(ref _inFlight);
            int max;
            while (now > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, now, max) != max)
            {
            }

            try
            {
                var list = _seen.GetOrAdd(e.SessionId!, _ => []);
                lock (list)
                {
                    list.Add(e.Delta!);
                }

                await work(e);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        public ValueTask OnStreamClosedAsync(string upstream, CancellationToken ct) => ValueTask.CompletedTask;

        public ValueTask OnUpstreamRemovedAsync(string upstream, string lease, CancellationToken ct) => ValueTask.CompletedTask;
    }
}
