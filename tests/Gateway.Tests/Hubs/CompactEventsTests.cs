using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests.Hubs;

/// <summary>
/// The compact event form (the default): text deltas as <c>D(s, seq, h, offset, delta)</c>, everything else as full
/// events, in either protocol. Clients of every form and protocol end with the same state; compact deltas keep their
/// seq (a lost one is seen and recovered) and name their session's epoch (a new epoch brings a new handle).
/// </summary>
public class CompactEventsTests
{
    private const string Session = "ses_compact1";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static string Payload(string type, object properties) =>
        JsonSerializer.Serialize(new { directory = "/p", project = "p", payload = new { id = "evt_x", type, properties } });

    private static string Announce(string partId, string type = "text") => Payload("message.part.updated", new
    {
        sessionID = Session,
        part = new { id = partId, messageID = "msg_1", sessionID = Session, type, text = "", time = new { start = 1 } },
    });

    private static string Delta(string partId, string delta) =>
        Payload("message.part.delta", new { sessionID = Session, messageID = "msg_1", partID = partId, field = "text", delta });

    private static string Restate(string partId, string text) => Payload("message.part.updated", new
    {
        sessionID = Session,
        part = new { id = partId, messageID = "msg_1", sessionID = Session, type = "text", text, time = new { start = 1, end = 2 } },
    });

    private static string Idle() => Payload("session.idle", new { sessionID = Session });

    private static async Task<(FakeOpencode Fake, GatewayHost Gateway)> StartAsync(params (string Key, string Value)[] settings)
    {
        var fake = await FakeOpencode.StartAsync();
        fake.AddSession(Session);
        var gateway = await GatewayHost.StartAsync(fake.BaseUrl, settings);
        return (fake, gateway);
    }

    private static GatewayHubClientOptions As(string? events, bool messagePack) =>
        GatewayHost.AsAdmin() with { Events = events, MessagePack = messagePack };

    [Fact]
    public async Task Every_form_and_protocol_ends_with_the_same_state_and_compact_deltas_name_only_handles()
    {
        var (fake, gateway) = await StartAsync();
        await using var fakeScope = fake;
        await using var gatewayScope = gateway;
        var forms = new (string Name, string? Events, bool MessagePack)[]
        {
            ("json-full", EventForms.Full, false), ("json-default", null, false), ("json-compact", EventForms.Compact, false),
            ("msgpack-compact", null, true), ("msgpack-full", EventForms.Full, true),
        };
        var watchers = new List<ObservedSession>();
        foreach (var form in forms)
        {
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, Session, options: As(form.Events, form.MessagePack)));
        }

        // Raw views of one compact and one full connection: what arrives, as sent.
        await using var compactRaw = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(null, false) with { RecordEvents = false });
        var compactCalls = new ConcurrentQueue<object>();
        compactRaw.OnSessionEvent(e => compactCalls.Enqueue(e));
        compactRaw.OnCompactDelta(d => compactCalls.Enqueue(d));
        var compactJoin = await compactRaw.JoinAsync(new JoinRequest(Session));
        await using var fullRaw = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(EventForms.Full, false) with { RecordEvents = false });
        var fullCalls = new ConcurrentQueue<JsonElement>();
        fullRaw.OnSessionEvent(e => fullCalls.Enqueue(e));
        fullRaw.OnCompactDelta(d => throw new InvalidOperationException("a full connection got a compact delta"));
        var fullJoin = await fullRaw.JoinAsync(new JoinRequest(Session));

        fake.Emit(Announce("prt_a"));
        foreach (var piece in new[] { "Hello ", "wörld ", "😀 ", "and ", "more." })
        {
            fake.Emit(Delta("prt_a", piece));
        }

        fake.Emit(Announce("prt_r", "reasoning"));
        fake.Emit(Delta("prt_r", "thinking "));
        fake.Emit(Delta("prt_r", "hard"));
        fake.Emit(Delta("prt_x", "never announced")); // a gap at 0 introduces its handle
        fake.Emit(Delta("prt_x", " part"));
        fake.Emit(Restate("prt_a", "Hello wörld 😀 and more. Restated."));
        fake.Emit(Delta("prt_a", " After."));
        fake.Emit(Idle());
        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => x.View.StatusType == "idle" && x.AllText().Contains("After.", StringComparison.Ordinal), Timeout, "idle");
        }

        var expected = watchers[0].Read(w => Parts(w.View));
        Assert.Contains("Hello wörld 😀 and more. Restated. After.", expected, StringComparison.Ordinal);
        Assert.Contains("thinking hard", expected, StringComparison.Ordinal);
        Assert.Contains("never announced part", expected, StringComparison.Ordinal);
        for (var i = 0; i < watchers.Count; i++)
        {
            var (name, events, _) = forms[i];
            var w = watchers[i];
            Assert.Equal(expected, w.Read(x => Parts(x.View)));
            Assert.Equal([0], w.Read(x => x.View.Part("prt_x")!.GapsOf()));
            Assert.Empty(w.Read(x => x.HandleViolations));
            Assert.Empty(w.Read(x => x.Failures));
            Assert.Equal(0, w.Read(x => x.CompactIgnored));
            // 5 + 2 + 2 + 1 deltas; the compact ones arrived as D, the full ones as events
            Assert.True(events == EventForms.Full ? w.Read(x => x.CompactApplied) == 0 : w.Read(x => x.CompactApplied) == 10, name);
        }

        await Eventually.HoldsAsync(() => compactCalls.Count(c => c is CompactDelta) == 10 && fullCalls.Count(e => Type(e) == "part.delta") == 10, "10 deltas on each connection", Timeout);
        await Eventually.HoldsAsync(() => compactCalls.OfType<JsonElement>().Any(e => Type(e) == "status"), "the status event on the compact connection", Timeout);

        // Compact: no part.delta event, every D of this session's handle, seqs continuous with the full events'
        var s = compactJoin.GetProperty("sessionHandle").GetInt32();
        Assert.Equal(s, compactJoin.GetProperty("snapshot").GetProperty("sessionHandle").GetInt32());
        Assert.DoesNotContain(compactCalls.OfType<JsonElement>(), e => Type(e) == "part.delta");
        Assert.All(compactCalls.OfType<CompactDelta>(), d => Assert.Equal(s, d.S));
        var compactSeqs = compactCalls.Select(c => c is CompactDelta d ? d.Seq : ((JsonElement)c).GetProperty("seq").GetInt64()).ToList();
        var fullSeqs = fullCalls.Select(e => e.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(fullSeqs, compactSeqs);
        Assert.Equal(Enumerable.Range(1, fullSeqs.Count).Select(i => (long)i + compactJoin.GetProperty("seq").GetInt64()), compactSeqs);

        // Full: no session handle; every delta carries its part field's handle, one handle per part field
        Assert.False(fullJoin.TryGetProperty("sessionHandle", out _));
        var handles = fullCalls.Where(e => e.TryGetProperty("handle", out _))
            .Select(e => (Handle: e.GetProperty("handle").GetInt32(), Part: e.GetProperty("partId").GetString()))
            .Distinct().ToList();
        Assert.Equal(3, handles.Count);
        Assert.Equal(3, handles.Select(h => h.Handle).Distinct().Count());
        // and a compact delta's handle, offset and text are the full event's
        var fullDeltas = fullCalls.Where(e => Type(e) == "part.delta")
            .Select(e => (e.GetProperty("seq").GetInt64(), e.GetProperty("handle").GetInt32(), e.GetProperty("offset").GetInt32(), e.GetProperty("delta").GetString()));
        Assert.Equal(fullDeltas, compactCalls.OfType<CompactDelta>().Select(d => (d.Seq, d.H, d.Offset, (string?)d.Delta)));

        foreach (var w in watchers)
        {
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_compact_delta_lost_on_the_way_is_seen_by_its_seq_and_recovered_with_since()
    {
        var (fake, gateway) = await StartAsync();
        await using var fakeScope = fake;
        await using var gatewayScope = gateway;
        foreach (var messagePack in new[] { false, true })
        {
            await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: As(null, messagePack));
            var lost = 0;
            watcher.LoseOnTheWay = e => e is CompactDelta && Interlocked.Increment(ref lost) == 3;
            var part = messagePack ? "prt_m" : "prt_j";
            fake.Emit(Announce(part));
            for (var i = 1; i <= 8; i++)
            {
                fake.Emit(Delta(part, $"d{i} "));
            }

            await watcher.WaitUntilAsync(w => w.AllText().Contains($"{part}: d1 d2 d3 d4 d5 d6 d7 d8 \n", StringComparison.Ordinal), Timeout, "all deltas");
            Assert.Equal(1, watcher.Read(w => w.Recoveries)); // the hole was repaired from the replay log, no snapshot
            Assert.Equal(1, watcher.Read(w => w.Snapshots));
            Assert.Empty(watcher.Read(w => w.Failures));
            Assert.Empty(watcher.Read(w => w.HandleViolations));
        }
    }

    [Fact]
    public async Task A_new_epoch_brings_its_session_handle_in_the_pushed_snapshot_and_old_handles_stop()
    {
        var (fake, gateway) = await StartAsync(("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.050"),
            ("Gateway:Streaming:ReconnectMaxDelay", "00:00:00.100"));
        await using var fakeScope = fake;
        await using var gatewayScope = gateway;
        await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, Session, options: As(null, messagePack: false));
        fake.Emit(Announce("prt_1"));
        fake.Emit(Delta("prt_1", "before "));
        await watcher.WaitUntilAsync(w => w.AllText().Contains("before", StringComparison.Ordinal), Timeout, "first delta");
        var (epoch, handle) = watcher.Read(w => (w.View.Epoch, w.SessionHandle));
        Assert.NotNull(handle);

        fake.CutStreams();
        await watcher.WaitUntilAsync(w => w.View.Epoch > epoch, Timeout, "new epoch");
        var newHandle = watcher.Read(w => w.SessionHandle);
        Assert.NotNull(newHandle);
        Assert.NotEqual(handle, newHandle);

        // The part streams on in the new epoch: the gateway kept its text and marked where it may be missing.
        fake.Emit(Delta("prt_1", "after"));
        await watcher.WaitUntilAsync(w => w.AllText().Contains("prt_1: before after", StringComparison.Ordinal), Timeout, "delta in the new epoch");
        Assert.Equal([7], watcher.Read(w => w.View.Part("prt_1")!.GapsOf()));
        Assert.Equal(1, watcher.Read(w => w.PushedSnapshots));
        Assert.Equal(1, watcher.Read(w => w.Snapshots)); // no rejoin was needed
        Assert.Equal(0, watcher.Read(w => w.CompactIgnored));
        Assert.Empty(watcher.Read(w => w.Failures));
        Assert.Empty(watcher.Read(w => w.HandleViolations));
    }

    [Fact]
    public async Task Each_session_of_a_compact_connection_has_its_own_handle()
    {
        var (fake, gateway) = await StartAsync();
        await using var fakeScope = fake;
        await using var gatewayScope = gateway;
        fake.AddSession("ses_compact2");
        await using var client = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(null, messagePack: true));
        var first = await client.JoinAsync(new JoinRequest(Session));
        var second = await client.JoinAsync(new JoinRequest("ses_compact2"));
        var again = await client.JoinAsync(new JoinRequest(Session));
        Assert.NotEqual(first.GetProperty("sessionHandle").GetInt32(), second.GetProperty("sessionHandle").GetInt32());
        Assert.Equal(first.GetProperty("sessionHandle").GetInt32(), again.GetProperty("sessionHandle").GetInt32());

        // Another compact connection of the same session on this node gets the same handle (one serialisation per group).
        await using var other = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(EventForms.Compact, messagePack: false));
        Assert.Equal(first.GetProperty("sessionHandle").GetInt32(), (await other.JoinAsync(new JoinRequest(Session))).GetProperty("sessionHandle").GetInt32());
    }

    [Fact]
    public async Task A_session_leaves_the_compact_table_with_its_last_compact_connection_and_comes_back_with_a_new_handle()
    {
        var (fake, gateway) = await StartAsync();
        await using var fakeScope = fake;
        await using var gatewayScope = gateway;
        var compact = gateway.Get<CompactSessions>();
        var group = OpencodeGateway.Sequencing.SessionKey.GroupNameOf("local", Session);
        await using var full = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(EventForms.Full, messagePack: false));
        await full.JoinAsync(new JoinRequest(Session));
        Assert.Null(compact.Find(group)); // full connections are not counted

        var first = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(null, messagePack: false));
        var second = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As(null, messagePack: true));
        var handle = (await first.JoinAsync(new JoinRequest(Session))).GetProperty("sessionHandle").GetInt32();
        await second.JoinAsync(new JoinRequest(Session));
        await first.LeaveAsync(Session);
        Assert.NotNull(compact.Find(group));
        await second.DisposeAsync(); // a disconnect leaves too
        await Eventually.HoldsAsync(() => compact.Find(group) is null, "the compact group gone", Timeout);

        var again = (await first.JoinAsync(new JoinRequest(Session))).GetProperty("sessionHandle").GetInt32();
        Assert.NotEqual(handle, again); // never reused on a node
        await first.DisposeAsync();
    }

    [Fact]
    public async Task An_unknown_event_form_is_refused_when_connecting()
    {
        var (fake, gateway) = await StartAsync();
        await using var fakeScope = fake;
        await using var gatewayScope = gateway;
        GatewayHubClient? client = null;
        try
        {
            client = await GatewayHubClient.ConnectAsync(gateway.HubUrl, As("tiny", messagePack: false));
            var closed = await client.Closed.WaitAsync(Timeout);
            Assert.Contains("bad_request", closed?.Message, StringComparison.Ordinal);
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Contains("bad_request", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            if (client is not null)
            {
                await client.DisposeAsync();
            }
        }
    }

    private static string? Type(JsonElement evt) => evt.GetProperty("type").GetString();

    /// <summary>Every part as the client holds it (text, type, ids), one line each.</summary>
    private static string Parts(SessionView view) =>
        string.Join("\n", view.Parts.Select(p => $"{p.Text} | {p.Json.GetRawText()}"));

}
