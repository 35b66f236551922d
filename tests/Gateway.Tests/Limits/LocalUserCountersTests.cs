using OpencodeGateway.Limits;

namespace Gateway.Tests.Limits;

/// <summary>The counters specification on a single node (<see cref="LocalUserCounters"/>): every node is this process.</summary>
public sealed class LocalUserCountersTests : UserCountersSpec
{
    private LocalUserCounters? _counters;

    protected override Task<IUserCounters> StartNodeAsync() => Task.FromResult<IUserCounters>(_counters ??= new LocalUserCounters(Clock));

    [Fact]
    public async Task Notes_are_forgotten_once_kept_long_enough_after_the_last_one()
    {
        var node = await StartNodeAsync();
        await node.NoteAsync("busy", "u", "up/ses_a", "1", TimeSpan.FromMinutes(10), CancellationToken.None);
        Clock.Advance(TimeSpan.FromMinutes(9));
        await node.NoteAsync("busy", "u", "up/ses_b", "2", TimeSpan.FromMinutes(10), CancellationToken.None);
        Clock.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(2, (await node.NotesAsync("busy", "u", CancellationToken.None)).Count);

        Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Empty(await node.NotesAsync("busy", "u", CancellationToken.None));
    }
}
