using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Contracts;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;

namespace Gateway.Tests.Sessions.History;

/// <summary>
/// The history specification on a single node (<see cref="LocalSessionHistory"/>: each live session's own replay log,
/// in this process). A single node reads every stream for good, so there is no fencing; nothing outlives the process;
/// idle sessions are forgotten by the node's eviction on its clock.
/// </summary>
public sealed class LocalSessionHistoryTests : SessionHistorySpec
{
    private protected override Task<HistoryNode> CreateNodeAsync(ReplayOptions replay)
    {
        var time = new FakeTimeProvider();
        var registry = new LiveSessionRegistry(Options.Create(replay), new EpochSource(time), time);
        return Task.FromResult(new HistoryNode(registry, new LocalSessionHistory(registry), time, _ => Task.FromResult("local|0"),
            () => Task.CompletedTask, () => ValueTask.CompletedTask));
    }

    private protected override Task<IReadOnlyList<HistoryNode>> ReadersAsync(HistoryNode writer) =>
        Task.FromResult<IReadOnlyList<HistoryNode>>([writer]);

    private protected override Task LetIdleTtlPassAsync(HistoryNode writer, ReplayOptions replay)
    {
        ((FakeTimeProvider)writer.Time).Advance(replay.IdleSessionTtl);
        // What IdleSessionEvictionService does for the sessions nobody on the node watches.
        writer.Registry.EvictIdle(_ => false);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Nothing_outlives_the_process()
    {
        var node = await StartNodeAsync();
        var stream = await node.ConnectAsync();
        var key = NewKey();
        await node.AppendAsync(Answer(key, 3));
        var restarted = await StartNodeAsync();

        Assert.Null(await restarted.History.GetHeadAsync(key, CancellationToken.None));
        Assert.Null(await restarted.History.ReadAfterAsync(key, new StreamPosition(1, 0), CancellationToken.None));
        Assert.Null(await restarted.History.ReadImageAsync(key, CancellationToken.None));
        // Even this node loads nothing from a store and learns of no session beyond those it sequences.
        Assert.Null(await node.History.LoadAsync(key, CancellationToken.None));
        Assert.Empty(await node.History.OpenStreamAsync(stream with { Connection = 2 }, CancellationToken.None));
    }

    [Fact]
    public async Task A_watch_receives_each_event_once_in_order_as_it_is_appended()
    {
        var node = await StartNodeAsync();
        await node.ConnectAsync();
        var key = NewKey();
        var received = new List<SessionEvent>();
        await using var watch = await node.History.WatchAsync(key, received.Add, CancellationToken.None);

        await node.AppendUnwrittenAsync(Answer(key, 5));

        Assert.Equal(AnswerEvents(5), Describe(received));
    }
}
