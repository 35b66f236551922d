using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Limits;

namespace Gateway.Tests.Limits;

/// <summary>
/// What every <see cref="IUserCounters"/> must do, run against the single node's <see cref="LocalUserCounters"/> and the
/// cluster's <see cref="RedisUserCounters"/> over a real Redis. A test's nodes share their counts (on a single node
/// there is one node: every "node" is the same counters) and one <see cref="FakeTimeProvider"/>, which the tests advance
/// to move the sliding windows. What only a cluster does (a dead node's slots, Redis losing its data) is in the Redis class.
/// </summary>
public abstract class UserCountersSpec : IAsyncLifetime
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private static readonly CancellationToken None = CancellationToken.None;

    protected FakeTimeProvider Clock { get; } = new(DateTimeOffset.Parse("2026-12-07T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>One more node of this test's cluster, on <see cref="Clock"/>.</summary>
    protected abstract Task<IUserCounters> StartNodeAsync();

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync() => Task.CompletedTask;

    protected static string NewName() => "user-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task Slots_are_taken_up_to_the_maximum_across_nodes_and_given_back_once_each()
    {
        var (one, two) = (await StartNodeAsync(), await StartNodeAsync());
        var name = NewName();

        var a = await one.TryTakeSlotAsync("connections", name, 3, None);
        var b = await two.TryTakeSlotAsync("connections", name, 3, None);
        var c = await one.TryTakeSlotAsync("connections", name, 3, None);
        Assert.All(new[] { a, b, c }, Assert.NotNull);
        Assert.Null(await two.TryTakeSlotAsync("connections", name, 3, None));
        Assert.Equal(3, await one.SlotsAsync("connections", name, None));

        await b!.DisposeAsync();
        await b.DisposeAsync(); // twice: given back once
        Assert.Equal(2, await two.SlotsAsync("connections", name, None));
        var d = await one.TryTakeSlotAsync("connections", name, 3, None);
        Assert.NotNull(d);
        Assert.Null(await one.TryTakeSlotAsync("connections", name, 3, None));

        foreach (var slot in new[] { a, c, d })
        {
            await slot!.DisposeAsync();
        }

        Assert.Equal(0, await one.SlotsAsync("connections", name, None));
    }

    [Fact]
    public async Task Slots_of_other_names_and_kinds_do_not_count()
    {
        var node = await StartNodeAsync();
        var (name, other) = (NewName(), NewName());
        await using var held = await node.TryTakeSlotAsync("connections", name, 1, None);

        Assert.Null(await node.TryTakeSlotAsync("connections", name, 1, None));
        await using var otherName = await node.TryTakeSlotAsync("connections", other, 1, None);
        await using var otherKind = await node.TryTakeSlotAsync("streams", name, 1, None);
        Assert.NotNull(otherName);
        Assert.NotNull(otherKind);
        Assert.Equal(0, await node.SlotsAsync("connections", NewName(), None));
    }

    [Fact]
    public async Task Concurrent_takers_never_get_more_than_the_maximum()
    {
        var nodes = new[] { await StartNodeAsync(), await StartNodeAsync(), await StartNodeAsync() };
        var name = NewName();

        var taken = await Task.WhenAll(Enumerable.Range(0, 60).Select(i => Task.Run(async () =>
            await nodes[i % nodes.Length].TryTakeSlotAsync("connections", name, 10, None))));

        Assert.Equal(10, taken.Count(t => t is not null));
        Assert.Equal(10, await nodes[0].SlotsAsync("connections", name, None));
    }

    [Fact]
    public async Task A_sliding_window_counts_up_to_the_maximum_and_says_when_one_more_is_allowed()
    {
        var (one, two) = (await StartNodeAsync(), await StartNodeAsync());
        var name = NewName();

        Assert.Null(await one.TryCountAsync("prompts", name, 3, Minute, None));
        Clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Null(await two.TryCountAsync("prompts", name, 3, Minute, None));
        Assert.Null(await one.TryCountAsync("prompts", name, 3, Minute, None));
        Clock.Advance(TimeSpan.FromSeconds(10));

        // The first occurrence (30 s ago) leaves the window in 30 s.
        var wait = await two.TryCountAsync("prompts", name, 3, Minute, None);
        Assert.NotNull(wait);
        Assert.InRange(wait.Value, TimeSpan.FromSeconds(29), TimeSpan.FromSeconds(30));
        Assert.Equal(3, await one.CountAsync("prompts", name, Minute, None));

        // A refused occurrence is not counted: once the first leaves the window, one more is allowed, and only one.
        Clock.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(2, await two.CountAsync("prompts", name, Minute, None));
        Assert.Null(await two.TryCountAsync("prompts", name, 3, Minute, None));
        Assert.NotNull(await one.TryCountAsync("prompts", name, 3, Minute, None));
        Assert.Equal(0, await one.CountAsync("prompts", NewName(), Minute, None));
    }

    [Fact]
    public async Task Concurrent_occurrences_are_counted_up_to_the_maximum()
    {
        var nodes = new[] { await StartNodeAsync(), await StartNodeAsync() };
        var name = NewName();

        var refused = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
            await nodes[i % nodes.Length].TryCountAsync("prompts", name, 30, Minute, None))));

        Assert.Equal(30, refused.Count(r => r is null));
        Assert.Equal(30, await nodes[1].CountAsync("prompts", name, Minute, None));
    }

    [Fact]
    public async Task Notes_are_shared_replaced_and_forgotten_by_member()
    {
        var (one, two) = (await StartNodeAsync(), await StartNodeAsync());
        var name = NewName();
        Assert.Empty(await one.NotesAsync("busy", name, None));

        await one.NoteAsync("busy", name, "up/ses_a", "1", TimeSpan.FromHours(1), None);
        await two.NoteAsync("busy", name, "up/ses_b", "2", TimeSpan.FromHours(1), None);
        await two.NoteAsync("busy", name, "up/ses_a", "3", TimeSpan.FromHours(1), None);
        Assert.Equal(new Dictionary<string, string> { ["up/ses_a"] = "3", ["up/ses_b"] = "2" }, await one.NotesAsync("busy", name, None));

        await one.ForgetAsync("busy", name, ["up/ses_a", "up/ses_unknown"], None);
        Assert.Equal(new Dictionary<string, string> { ["up/ses_b"] = "2" }, await two.NotesAsync("busy", name, None));
        Assert.Empty(await two.NotesAsync("busy", NewName(), None));
    }
}
