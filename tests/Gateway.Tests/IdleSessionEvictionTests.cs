using System.Text.Json;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Testing;
using OpencodeGateway.Delivery;

namespace OpencodeGateway.Tests;

/// <summary><c>Gateway:Replay:IdleSessionTtl</c>: a session nobody watches and with no event for the TTL is forgotten.</summary>
public class IdleSessionEvictionTests
{
    private const string Session = "ses_idle1";
    private static readonly TimeSpan Ttl = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public void Only_unwatched_sessions_idle_for_the_whole_ttl_are_forgotten()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var registry = new LiveSessionRegistry(Options.Create(new ReplayOptions { IdleSessionTtl = Ttl }), new EpochSource(clock), clock);
        var unwatched = new SessionKey("local", "ses_unwatched");
        var watched = new SessionKey("local", "ses_watched");
        bool IsWatched(SessionKey key) => key == watched;
        registry.Use(unwatched, _ => 0);
        registry.Use(watched, _ => 0);

        clock.Advance(Ttl - TimeSpan.FromSeconds(1));
        Assert.Equal(0, registry.EvictIdle(IsWatched));
        registry.Use(unwatched, _ => 0); // activity starts the wait again

        clock.Advance(Ttl - TimeSpan.FromSeconds(1));
        Assert.Equal(0, registry.EvictIdle(IsWatched));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, registry.EvictIdle(IsWatched));
        Assert.False(registry.TryGet(unwatched, out _));
        Assert.True(registry.TryGet(watched, out _));

        clock.Advance(Ttl * 3);
        Assert.Equal(0, registry.EvictIdle(IsWatched)); // watched: kept however long it is quiet
    }

    [Fact]
    public async Task The_gateway_sweeps_on_its_clock_and_a_forgotten_session_rejoins_with_a_snapshot()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var fake = await FakeOpencode.StartAsync();
        fake.AddSession(Session);
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = fake.BaseUrl, Time = clock,
            // No stall while the test moves the clock by minutes: a reconnect would forget unwatched sessions at once.
            Settings = { ["Gateway:Replay:IdleSessionTtl"] = "00:10:00", ["Gateway:Streaming:StallTimeout"] = "01:00:00" },
        });
        var registry = gateway.Get<LiveSessionRegistry>();
        var key = new SessionKey("local", Session);

        var first = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        fake.Emit(JsonSerializer.Serialize(new
        {
            payload = new { type = "message.part.delta", properties = new { sessionID = Session, messageID = "msg_1", partID = "prt_1", field = "text", delta = "kept" } },
        }));
        await first.WaitUntilAsync(w => w.AllText().Contains("kept", StringComparison.Ordinal), Timeout, "first delta");
        var position = first.View;
        var epoch = position.Epoch;
        await first.DisposeAsync();
        await Eventually.HoldsAsync(() => !gateway.Get<SessionFeeds>().IsWatched(key), "the watcher left", Timeout);
        var left = clock.GetUtcNow();

        // The sweep (every TTL / 4) runs on the gateway's clock: the session is forgotten once the clock has moved a
        // whole TTL past its last activity, and never before.
        while (registry.TryGet(key, out _))
        {
            Assert.True(clock.GetUtcNow() - left <= Ttl * 2, "still known long after the TTL");
            clock.Advance(Ttl / 4);
            await Task.Delay(20);
        }

        Assert.True(clock.GetUtcNow() - left >= Ttl, $"forgotten {clock.GetUtcNow() - left} after the watcher left");

        await using var back = await ObservedSession.StartAsync(gateway.HubUrl, Session, position, GatewayHost.AsAdmin());
        Assert.Equal((0, 1), back.Read(w => (w.Recoveries, w.Snapshots)));
        Assert.NotEqual(epoch, back.Read(w => w.View.Epoch));
    }

}
