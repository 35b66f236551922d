using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests;

/// <summary>
/// <c>Gateway:Streaming:CoalesceWindow</c>: consecutive deltas of one part become one <c>part.delta</c> (first offset,
/// concatenated text); clients, early or late, end byte-identical to what an uncoalesced gateway gives them.
/// </summary>
public class CoalescingTests
{
    private const string Session = "ses_coalesce1";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static string Delta(string partId, string delta) => JsonSerializer.Serialize(new
    {
        directory = "/p", project = "p",
        payload = new { id = "evt_x", type = "message.part.delta", properties = new { sessionID = Session, messageID = "msg_1", partID = partId, field = "text", delta } },
    });

    private static string PartUpdated(string partId) => JsonSerializer.Serialize(new
    {
        directory = "/p", project = "p",
        payload = new
        {
            id = "evt_u", type = "message.part.updated",
            properties = new { sessionID = Session, part = new { id = partId, messageID = "msg_1", sessionID = Session, type = "text", time = new { start = 1 } } },
        },
    });

    private static string Idle() => JsonSerializer.Serialize(new
    {
        directory = "/p", project = "p", payload = new { id = "evt_i", type = "session.idle", properties = new { sessionID = Session } },
    });

    /// <summary>Runs the same upstream stream through a gateway with the given window; returns each watcher's text and delta count.</summary>
    private static async Task<List<(string Text, int Deltas, int Failures)>> RunAsync(string window)
    {
        // Windows close when the test moves the gateway's clock, not when a busy machine gets round to it.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var fake = await FakeOpencode.StartAsync();
        fake.AddSession(Session);
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = fake.BaseUrl, Time = clock, Settings = { ["Gateway:Streaming:CoalesceWindow"] = window },
        });

        var early = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        fake.Emit(PartUpdated("prt_a"));
        for (var i = 1; i <= 150; i++)
        {
            fake.Emit(Delta("prt_a", $"a{i} "));
            if (i % 50 == 0)
            {
                // Close the window mid-part: the text held so far reaches the watcher before the part goes on.
                var token = $"a{i} ";
                var deadline = DateTime.UtcNow + Timeout;
                while (!early.Read(w => w.AllText().Contains(token, StringComparison.Ordinal)))
                {
                    Assert.True(DateTime.UtcNow < deadline, $"'{token}' never reached the watcher");
                    clock.Advance(TimeSpan.FromMilliseconds(40));
                    await Task.Delay(20);
                }
            }
        }

        // A late joiner: its snapshot holds what was applied; held text reaches it as a delta at the snapshot's length.
        var late = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: GatewayHost.AsAdmin());
        fake.Emit(PartUpdated("prt_b"));
        for (var i = 1; i <= 100; i++)
        {
            fake.Emit(Delta("prt_b", $"b{i}-\u00e9\ud83d\ude00 ")); // non-ASCII, surrogate pairs: offsets in UTF-16 units
            if (i == 40)
            {
                fake.Emit(Delta("prt_a", "tail-of-a ")); // another part in between: flushes the held text of prt_b first
            }
        }

        fake.Emit(Idle());
        var result = new List<(string, int, int)>();
        foreach (var w in new[] { early, late })
        {
            await w.WaitUntilAsync(x => x.IdleAt is not null, Timeout, "idle");
            result.Add(w.Read(x => (x.AllText(), x.EventTypes.Count(t => t == "part.delta"), x.Failures.Count)));
            await w.DisposeAsync();
        }

        return result;
    }

    private static string Expected()
    {
        var a = new StringBuilder();
        for (var i = 1; i <= 150; i++) a.Append($"a{i} ");
        a.Append("tail-of-a ");
        var b = new StringBuilder();
        for (var i = 1; i <= 100; i++) b.Append($"b{i}-\u00e9\ud83d\ude00 ");
        return $"prt_a: {a}\nprt_b: {b}\n";
    }

    [Fact]
    public async Task Coalesced_clients_end_byte_identical_with_fewer_delta_events()
    {
        var off = await RunAsync("00:00:00");
        var on = await RunAsync("00:00:00.040");
        var expected = Expected();
        foreach (var (text, _, failures) in off.Concat(on))
        {
            Assert.Equal(expected, text);
            Assert.Equal(0, failures);
        }

        Assert.Equal(251, off[0].Deltas); // one client event per upstream delta
        Assert.True(on[0].Deltas < off[0].Deltas / 2, $"coalesced: {on[0].Deltas} delta events for 251 upstream deltas");
    }
}
