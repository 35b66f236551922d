using System.Text;
using System.Text.Json;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests.Ingest;

/// <summary>
/// Many sessions of one upstream streaming at once, sequenced by several workers: every watcher applies each event in
/// seq order, with no gap and no duplicate (checked at each event by the watcher's model), and ends byte-identical.
/// </summary>
public class ParallelSequencingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static string Event(string type, object properties) =>
        "data: " + JsonSerializer.Serialize(new { directory = "/p", project = "p", payload = new { id = "evt_x", type, properties } }) + "\n\n";

    [Fact]
    public async Task Twenty_four_sessions_at_a_high_rate_reach_their_watchers_in_order_without_a_gap()
    {
        const int sessions = 24, tokens = 150;
        await using var fake = await FakeOpencode.StartAsync();
        var ids = Enumerable.Range(0, sessions).Select(i => $"ses_par{i:00}").ToArray();
        foreach (var id in ids)
        {
            fake.AddSession(id);
        }

        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = fake.BaseUrl,
            Settings = new Dictionary<string, string?> { ["Gateway:Streaming:SequencingWorkers"] = "4" },
        });
        var watchers = new List<ObservedSession>();
        foreach (var id in ids)
        {
            for (var w = 0; w < 2; w++)
            {
                watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, id, options: GatewayHost.AsAdmin()));
            }
        }

        // Every session's part announced, then its tokens interleaved with every other session's, written in a few
        // large bursts so the pump reads far faster than one worker would sequence.
        var burst = new StringBuilder();
        foreach (var id in ids)
        {
            burst.Append(Event("message.part.updated", new
            {
                sessionID = id,
                part = new { id = "prt_1", messageID = "msg_1", sessionID = id, type = "text", text = "", time = new { start = 1 } },
            }));
        }

        for (var t = 0; t < tokens; t++)
        {
            foreach (var id in ids)
            {
                burst.Append(Event("message.part.delta", new { sessionID = id, messageID = "msg_1", partID = "prt_1", field = "text", delta = $"{id}:{t} " }));
            }

            if (t % 50 == 49)
            {
                fake.EmitRaw(burst.ToString());
                burst.Clear();
            }
        }

        foreach (var watcher in watchers)
        {
            var expected = "prt_1: " + string.Concat(Enumerable.Range(0, tokens).Select(t => $"{watcher.SessionId}:{t} ")) + "\n";
            await watcher.WaitUntilAsync(x => x.AllText() == expected, Timeout, $"{watcher.SessionId}'s whole text");
            watcher.Read(x =>
            {
                Assert.Empty(x.Failures);
                Assert.Equal(0, x.Recoveries);
                Assert.Equal(0, x.Duplicates);
                Assert.Equal(0, x.EventsBeforeTheirEpochSnapshot);
                Assert.Equal(1 + tokens, x.EventsApplied);
                // Each applied event was the next seq of the one epoch.
                var positions = x.AppliedPositions;
                Assert.All(positions.Zip(positions.Skip(1)), p => Assert.Equal((p.First.Epoch, p.First.Seq + 1), p.Second));
                return 0;
            });
            await watcher.DisposeAsync();
        }

        Assert.Equal(1, fake.StreamConnections);
    }
}
