using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Testing;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpencodeGateway.Ingest;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>The gateway's invariants on the real opencode (see the README's event contract).</summary>
[Collection(OpencodeCollection.Name)]
public sealed class StreamingTests(OpencodeStack stack, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(90);

    private static bool Finished(ObservedSession w, string lastToken) =>
        w.View.StatusType == "idle" && w.AllText().Contains(lastToken, StringComparison.Ordinal);

    private async Task<string> CreateSessionAsync(GatewayHost gateway, string title)
    {
        await using var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.As());
        var info = await connection.CreateSessionAsync(new CreateSessionRequest(title));
        return info.GetProperty("id").GetString()!;
    }

    private async Task AssertIdenticalToStoredAsync(string sessionId, params ObservedSession[] watchers)
    {
        var stored = OpencodeText.AllText(await stack.StoredMessagesAsync(sessionId));
        Assert.NotEmpty(stored);
        foreach (var w in watchers)
        {
            Assert.Equal(stored, w.Read(x => x.AllText()));
        }
    }

    private static MetricCollector<long> Collector(GatewayHost gateway, string instrument) =>
        new(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, instrument);

    [Fact]
    public async Task Three_clients_end_byte_identical_on_one_upstream_connection()
    {
        var connectionsBefore = stack.GlobalEventConnections();
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        using var reconnects = Collector(gateway, "gateway.upstream.reconnects");
        var sessionId = await CreateSessionAsync(gateway, "three clients");
        var watchers = new List<ObservedSession>();
        for (var i = 0; i < 3; i++)
        {
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, sessionId));
        }

        var result = await watchers[0].Client.PromptAsync(new PromptRequest(sessionId, "answer tokens=500 delay=4"));
        Assert.False(result.Queued);
        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => Finished(x, "t500 "), AnswerTimeout, "500-token answer");
        }

        await AssertIdenticalToStoredAsync(sessionId, [.. watchers]);
        Assert.All(watchers, w => Assert.True(w.Read(x => x.EventTypes.Count(t => t == "part.delta")) >= 500));
        Assert.All(watchers, w => Assert.Empty(w.Read(x => x.Failures)));
        Assert.Equal(1, stack.GlobalEventConnections() - connectionsBefore);
        Assert.Empty(reconnects.GetMeasurementSnapshot());
        foreach (var w in watchers)
        {
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task Eight_sessions_answering_at_once_are_sequenced_in_parallel_and_every_watcher_ends_in_order_and_byte_identical()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = stack.BaseUrl,
            Settings = { ["Gateway:Streaming:SequencingWorkers"] = "4" },
        });
        var user = GatewayHost.As("parallel-" + Guid.NewGuid().ToString("N")[..8]);
        var sessions = new List<string>();
        await using (var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, user))
        {
            for (var i = 0; i < 8; i++)
            {
                sessions.Add((await connection.CreateSessionAsync(new CreateSessionRequest($"parallel {i}"))).GetProperty("id").GetString()!);
            }
        }

        var watchers = new List<ObservedSession>();
        foreach (var id in sessions)
        {
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, id, options: user));
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, id, options: user));
        }

        // Every session answers at once, one upstream stream interleaving their tokens.
        await Task.WhenAll(sessions.Select(id => watchers.First(w => w.SessionId == id).Client
            .PromptAsync(new PromptRequest(id, "parallel tokens=300 delay=3"))));
        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => Finished(x, "t300 "), AnswerTimeout, $"{w.SessionId}'s 300-token answer");
        }

        foreach (var id in sessions)
        {
            await AssertIdenticalToStoredAsync(id, [.. watchers.Where(w => w.SessionId == id)]);
            // At every event each watcher applied, what it showed was a prefix of opencode's final text.
            var stored = await stack.StoredMessagesAsync(id);
            Assert.All(watchers.Where(w => w.SessionId == id), w => Assert.Empty(w.Read(x => x.Mismatches(stored))));
        }

        foreach (var w in watchers)
        {
            // Each event once and in order: seq+1 of the one epoch at every event applied.
            var applied = w.Read(x => x.AppliedPositions.ToList());
            Assert.True(applied.Count >= 300);
            Assert.All(applied.Zip(applied.Skip(1)), p => Assert.Equal((p.First.Epoch, p.First.Seq + 1), p.Second));
            Assert.Equal((1, 0, 0, 0), w.Read(x => (x.Snapshots, x.Recoveries, x.Duplicates, x.EventsBeforeTheirEpochSnapshot)));
            Assert.Empty(w.Read(x => x.Failures));
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_late_joiner_and_a_client_that_drops_and_rejoins_end_byte_identical()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var sessionId = await CreateSessionAsync(gateway, "late joiner");
        await using var first = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        var dropper = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);

        await first.Client.PromptAsync(new PromptRequest(sessionId, "answer tokens=400 delay=10"));
        await dropper.WaitUntilAsync(w => w.AllText().Contains("t60 ", StringComparison.Ordinal), AnswerTimeout, "60 tokens");
        var model = dropper.View;
        await dropper.DisposeAsync(); // gone mid-stream

        await first.WaitUntilAsync(w => w.AllText().Contains("t120 ", StringComparison.Ordinal), AnswerTimeout, "120 tokens");
        // opencode itself does not show streamed text before the part ends: only the gateway can serve it.
        var storedMidStream = OpencodeText.AllText(await stack.StoredMessagesAsync(sessionId));
        Assert.DoesNotContain("t120 ", storedMidStream, StringComparison.Ordinal);

        await using var late = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        Assert.Equal(1, late.Snapshots);
        Assert.Contains("t1 t2 t3 ", late.Read(w => w.AllText()), StringComparison.Ordinal);

        await using var back = await ObservedSession.StartAsync(gateway.HubUrl, sessionId, model);
        Assert.Equal(1, back.Recoveries);
        Assert.Equal(0, back.Snapshots);

        foreach (var w in new[] { first, late, back })
        {
            await w.WaitUntilAsync(x => Finished(x, "t400 "), AnswerTimeout, "400-token answer");
        }

        await AssertIdenticalToStoredAsync(sessionId, first, late, back);
        Assert.All(new[] { first, late, back }, w => Assert.Empty(w.Read(x => x.Failures)));
    }

    [Fact]
    public async Task Tool_calls_and_permission_requests_reach_clients_and_a_reply_reaches_opencode()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var sessionId = await CreateSessionAsync(gateway, "tool call");
        await using var asker = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        await using var other = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);

        await asker.Client.PromptAsync(new PromptRequest(sessionId, "run it tool=bash"));
        await other.WaitUntilAsync(w => w.View.Permissions.Count == 1, AnswerTimeout, "permission request");
        var request = other.Read(w => w.View.Permissions.Single());
        Assert.Equal("bash", request.GetProperty("permission").GetString());
        var toolStates = other.Read(w => w.View.PartsOfType("tool").Select(p => p.ToolStatus()).ToList());
        Assert.Contains(toolStates, s => s is "pending" or "running");

        // A late joiner sees the pending request in its snapshot.
        await using var late = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        Assert.Single(late.Read(w => w.View.Permissions));

        await asker.Client.ReplyPermissionAsync(new PermissionReplyRequest(sessionId, request.GetProperty("id").GetString()!, "once"));
        foreach (var w in new[] { asker, other, late })
        {
            await w.WaitUntilAsync(x => Finished(x, "Tool finished."), AnswerTimeout, "answer after the tool");
            Assert.Empty(w.Read(x => x.View.Permissions));
            Assert.Equal("completed", w.Read(x => x.View.PartsOfType("tool").Single().ToolStatus()));
        }

        Assert.Contains("permission.replied", other.Read(w => w.EventTypes));
        Assert.Contains("mock-tool-output", other.Read(w => w.View.PartsOfType("tool").Single().Field(StreamedFields.ToolOutput)), StringComparison.Ordinal);
        await AssertIdenticalToStoredAsync(sessionId, asker, other, late);
    }

    [Fact]
    public async Task After_opencode_restarts_mid_answer_clients_resynchronise_to_what_it_stored()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl,
            ("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.100"), ("Gateway:Streaming:ReconnectMaxDelay", "00:00:01"));
        using var reconnects = Collector(gateway, "gateway.upstream.reconnects");
        var sessionId = await CreateSessionAsync(gateway, "restart");
        await using var a = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        await using var b = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        var epoch = a.Read(w => w.View.Epoch);

        await a.Client.PromptAsync(new PromptRequest(sessionId, "answer tokens=1000 delay=10"));
        await a.WaitUntilAsync(w => w.AllText().Contains("t50 ", StringComparison.Ordinal), AnswerTimeout, "50 tokens");
        await stack.RestartAsync();

        foreach (var w in new[] { a, b })
        {
            await w.WaitUntilAsync(x => x.View.Epoch > epoch && x.View.StatusType == "idle", AnswerTimeout, "new epoch after restart");
        }

        Assert.NotEmpty(reconnects.GetMeasurementSnapshot());
        await AssertIdenticalToStoredAsync(sessionId, a, b);
        output.WriteLine($"after restart: {a.Read(w => w.PushedSnapshots)} pushed snapshots, {a.Read(w => w.Snapshots)} joins with snapshot");

        // The stream works in the new epoch.
        await a.Client.PromptAsync(new PromptRequest(sessionId, "again tokens=30 delay=5"));
        foreach (var w in new[] { a, b })
        {
            await w.WaitUntilAsync(x => Finished(x, "t30 "), AnswerTimeout, "answer after restart");
        }

        await AssertIdenticalToStoredAsync(sessionId, a, b);
        Assert.All(new[] { a, b }, w => Assert.Empty(w.Read(x => x.Failures)));
    }

    [Fact]
    public async Task A_client_that_stops_reading_is_dropped_without_slowing_twenty_others()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = stack.BaseUrl,
            // Compact deltas (the default) are ~50 bytes: the whole answer is ~0.5 MB, so the bounds must be below that:
            // the socket's send buffer (the production setting, smaller) and the outbox.
            Settings = new() { ["Gateway:Outbox:MaxQueuedBytes"] = "131072", ["Gateway:Outbox:SocketSendBufferBytes"] = "32768" },
        });
        using var slowDropped = Collector(gateway, "gateway.connections.slow_dropped");
        var sessionId = await CreateSessionAsync(gateway, "slow consumer");
        var fast = new List<ObservedSession>();
        for (var i = 0; i < 20; i++)
        {
            fast.Add(await ObservedSession.StartAsync(gateway.HubUrl, sessionId));
        }

        // A client that stops reading its socket (a small receive buffer, so that the socket fills quickly). Its own
        // server timeout is long: it must be closed by the gateway, not give up by itself.
        var slow = await ObservedSession.StartAsync(gateway.HubUrl, sessionId, options: GatewayHost.As() with
        {
            ObserveWebSocket = true, SocketReceiveBufferSize = 4096, ServerTimeout = TimeSpan.FromMinutes(10),
        });
        slow.Socket.PauseReading = true;

        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);
        var started = Stopwatch.StartNew();
        await fast[0].Client.PromptAsync(new PromptRequest(sessionId, "answer tokens=10000 delay=1"));
        foreach (var w in fast)
        {
            await w.WaitUntilAsync(x => Finished(x, "t10000 "), AnswerTimeout, "10000-token answer");
        }

        var answered = started.Elapsed;
        var idleTimes = fast.Select(w => w.Read(x => x.IdleAt!.Value)).ToList();
        var spread = idleTimes.Max() - idleTimes.Min();
        output.WriteLine($"answer took {answered}, idle spread across 20 clients {spread.TotalMilliseconds} ms");
        // Not slowed: every fast client got the whole answer on its first join, without a gap, a new epoch or a failure
        // (a millisecond bound on the spread would measure the machine, not the gateway).
        Assert.All(fast, w => Assert.Equal((1, 0, 0, 0), w.Read(x => (x.Snapshots, x.Recoveries, x.PushedSnapshots, x.Failures.Count))));

        Assert.Equal(1, slowDropped.GetMeasurementSnapshot().EvaluateAsCounter());
        // It sees the close once it reads again.
        slow.Socket.PauseReading = false;
        Assert.True(await Task.WhenAny(slow.Closed, Task.Delay(TimeSpan.FromMinutes(2))) == slow.Closed, "the stalled client was not closed");
        var memoryAfter = GC.GetTotalMemory(forceFullCollection: true);
        output.WriteLine($"managed memory {memoryBefore / 1024} KB -> {memoryAfter / 1024} KB");
        Assert.True(memoryAfter - memoryBefore < 64L * 1024 * 1024, $"memory grew by {(memoryAfter - memoryBefore) / 1024} KB");

        await AssertIdenticalToStoredAsync(sessionId, [.. fast]);

        // The dropped client recovers with since.
        await using var back = await ObservedSession.StartAsync(gateway.HubUrl, sessionId, slow.View);
        await back.WaitUntilAsync(x => Finished(x, "t10000 "), AnswerTimeout, "recovered client");
        await AssertIdenticalToStoredAsync(sessionId, back);
        await slow.DisposeAsync();
        foreach (var w in fast)
        {
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task Unknown_sessions_and_bad_calls_get_coded_errors()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        await using var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.As());
        async Task<string> Error(string method, object? arg) =>
            (await Assert.ThrowsAsync<HubException>(() => connection.InvokeAsync(method, arg))).Message;

        Assert.Contains("HubException: session_not_found:", await Error("Join", new { sessionId = "ses_doesnotexist" }));
        Assert.Contains("HubException: session_not_found:", await Error("Prompt", new { sessionId = "ses_doesnotexist", text = "hi" }));
        Assert.Contains("HubException: session_not_found:", await Error("Abort", "ses_doesnotexist"));
        Assert.Contains("HubException: bad_request:", await Error("Join", new { sessionId = "nonsense_id" }));
        Assert.Contains("HubException: bad_request:", await Error("CreateSession", new { title = new string('x', 600) }));
        var info = await connection.CreateSessionAsync(new CreateSessionRequest("still works"));
        Assert.StartsWith("ses_", info.GetProperty("id").GetString(), StringComparison.Ordinal);
    }
}
