using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// A real agent run through the gateway on the real opencode (mock LLM): a subagent (opencode's <c>task</c> tool)
/// whose <c>bash</c> call waits for permission, answered from the root session's watcher; questions answered and
/// dismissed; an attachment; a tool streaming 400 lines of output, as deltas; a long session paged back. Every watcher
/// applies events by the client rules, and what it shows is checked at every event it applies.
/// </summary>
[Collection(OpencodeCollection.Name)]
public sealed class AgentRunTests(OpencodeStack stack, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(120);

    internal const string SubagentPrompt =
        """go tool=task args={"description":"sub task","prompt":"do it tool=bash","subagent_type":"general"}""";

    internal const string QuestionPrompt =
        """ask tool=question args={"questions":[{"question":"Which color?","header":"Color","options":[{"label":"Red","description":"r"},{"label":"Blue","description":"b"}]}]}""";

    private static bool Idle(ObservedSession w) => w.View.StatusType == "idle";

    private async Task<string> CreateSessionAsync(GatewayHost gateway, string title, string user = "alice")
    {
        await using var connection = await gateway.ConnectHubAsync(user);
        return (await connection.CreateSessionAsync(new CreateSessionRequest(title))).GetProperty("id").GetString()!;
    }

    /// <summary>Every streamed field a watcher showed, at every event it applied, against opencode's stored parts.</summary>
    private async Task AssertShownAndFinalAsync(string sessionId, params ObservedSession[] watchers)
    {
        var stored = await stack.StoredMessagesAsync(sessionId);
        Assert.NotEmpty(OpencodeText.FinalFields(stored));
        foreach (var w in watchers)
        {
            Assert.Empty(w.Read(x => x.Mismatches(stored)));
            Assert.Empty(w.Read(x => x.Failures));
        }
    }

    [Fact]
    public async Task A_subagents_permission_reaches_the_roots_watchers_and_is_answered_there()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var root = await CreateSessionAsync(gateway, "subagent run");
        await using var compact = await ObservedSession.StartAsync(gateway.HubUrl, root);
        await using var full = await ObservedSession.StartAsync(gateway.HubUrl, root, options: GatewayHost.As() with { Events = EventForms.Full });

        await compact.Client.PromptAsync(new PromptRequest(root, SubagentPrompt));
        await full.WaitUntilAsync(w => w.View.Permissions.Count == 1, AnswerTimeout, "the subagent's permission request on the root");
        var request = full.Read(w => w.View.Permissions.Single());
        var child = request.GetProperty("sessionID").GetString()!;
        Assert.NotEqual(root, child);
        Assert.Contains(("permission.asked", child), full.Read(w => w.FromDescendants));
        await compact.WaitUntilAsync(w => w.View.Permissions.Ids().Contains(request.GetProperty("id").GetString()!), AnswerTimeout, "compact watcher");
        await full.WaitUntilAsync(w => w.View.Children.Any(c => c.Id == child), AnswerTimeout, "child.updated");
        Assert.Equal(root, full.Read(w => w.View.Children.Single(c => c.Id == child).ParentId));
        Assert.Equal("sub task (@general subagent)", full.Read(w => w.View.Children.Single(c => c.Id == child).Title));

        // A late joiner of the root sees the child and its pending request in the snapshot; the child joins like any session.
        await using var late = await ObservedSession.StartAsync(gateway.HubUrl, root);
        Assert.True(late.Read(w => w.View.Permissions.Ids().Contains(request.GetProperty("id").GetString()!)));
        Assert.True(late.Read(w => w.View.Children.Any(c => c.Id == child)));
        await using var childWatcher = await ObservedSession.StartAsync(gateway.HubUrl, child);
        Assert.Single(childWatcher.Read(w => w.View.Permissions));

        // Answered with the root's id.
        await compact.Client.ReplyPermissionAsync(new PermissionReplyRequest(root, request.GetProperty("id").GetString()!, "once"));
        foreach (var w in new[] { compact, full, late })
        {
            await w.WaitUntilAsync(x => Idle(x) && x.AllText().Contains("Tool finished.", StringComparison.Ordinal)
                && x.View.PartsOfType("tool").Any(p => p.ToolStatus() == "completed"), AnswerTimeout, "the run's end");
            Assert.Empty(w.Read(x => x.View.Permissions));
        }

        await childWatcher.WaitUntilAsync(w => Idle(w) && w.AllText().Contains("Tool finished.", StringComparison.Ordinal), AnswerTimeout, "the child's end");
        Assert.Contains(("permission.replied", child), full.Read(w => w.FromDescendants));
        await AssertShownAndFinalAsync(root, compact, full, late);
        await AssertShownAndFinalAsync(child, childWatcher);
        Assert.Equal(OpencodeText.AllText(await stack.StoredMessagesAsync(child)), childWatcher.Read(w => w.AllText()));
    }

    [Fact]
    public async Task Questions_are_answered_and_dismissed_through_the_gateway()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var sessionId = await CreateSessionAsync(gateway, "questions");
        await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);

        await watcher.Client.PromptAsync(new PromptRequest(sessionId, QuestionPrompt));
        await watcher.WaitUntilAsync(w => w.View.Questions.Count == 1, AnswerTimeout, "question.asked");
        var question = watcher.Read(w => w.View.Questions.Single());
        Assert.Equal("Which color?", question.GetProperty("questions")[0].GetProperty("question").GetString());
        var requestId = question.GetProperty("id").GetString()!;
        await using (var late = await ObservedSession.StartAsync(gateway.HubUrl, sessionId))
        {
            Assert.True(late.Read(w => w.View.Questions.Ids().Contains(requestId)));
        }

        var wrongCount = await Assert.ThrowsAsync<GatewayException>(() => watcher.Client.ReplyQuestionAsync(new QuestionReplyRequest(sessionId, requestId, [["Red"], ["Blue"]])));
        Assert.Equal("bad_request", wrongCount.Code);
        var unknown = await Assert.ThrowsAsync<GatewayException>(() => watcher.Client.ReplyQuestionAsync(new QuestionReplyRequest(sessionId, "que_unknown1", [["Red"]])));
        Assert.Equal("question_not_found", unknown.Code);

        await watcher.Client.ReplyQuestionAsync(new QuestionReplyRequest(sessionId, requestId, [["Red"]]));
        await watcher.WaitUntilAsync(w => Idle(w) && w.AllText().Contains("Tool finished.", StringComparison.Ordinal), AnswerTimeout, "the answer after the question");
        Assert.Empty(watcher.Read(w => w.View.Questions));
        Assert.Contains("question.replied", watcher.Read(w => w.EventTypes));
        var tool = watcher.Read(w => w.View.PartsOfType("tool").Single(p => p.Json.GetProperty("tool").GetString() == "question"));
        Assert.Equal("completed", tool.ToolStatus());
        Assert.Contains("\"Which color?\"=\"Red\"", tool.Field(StreamedFields.ToolOutput), StringComparison.Ordinal);

        // Dismissed: the tool call ends with an error and the session goes idle.
        await watcher.Client.PromptAsync(new PromptRequest(sessionId, QuestionPrompt));
        await watcher.WaitUntilAsync(w => w.View.Questions.Count == 1, AnswerTimeout, "the second question");
        var second = watcher.Read(w => w.View.Questions.Ids().Single());
        await watcher.Client.RejectQuestionAsync(new QuestionRejectRequest(sessionId, second));
        await watcher.WaitUntilAsync(w => Idle(w) && w.View.Questions.Count == 0
            && w.View.PartsOfType("tool").Count(p => p.ToolStatus() == "error") == 1, AnswerTimeout, "the dismissed question");
        Assert.Contains("question.rejected", watcher.Read(w => w.EventTypes));
        await Assert.ThrowsAsync<GatewayException>(() => watcher.Client.RejectQuestionAsync(new QuestionRejectRequest(sessionId, second)));
        await AssertShownAndFinalAsync(sessionId, watcher);
    }

    [Fact]
    public async Task An_attachment_is_stored_by_opencode_and_shown_to_watchers()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var sessionId = await CreateSessionAsync(gateway, "attachment");
        await using var watcher = await ObservedSession.StartAsync(gateway.HubUrl, sessionId, options: GatewayHost.As() with { MessagePack = true });
        // A 1×1 PNG, and a text file near 1 MiB: both well within the default limit, the second beyond the hub's old 1 MiB message limit.
        var png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
        var text = "data:text/plain;base64," + Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("attached line\n", 80_000))));
        await watcher.Client.PromptAsync(new PromptRequest(sessionId, Parts:
        [
            new PromptPart("text", "see the attachments tokens=3"),
            new PromptPart("file") { Mime = "image/png", Url = png, Filename = "dot.png" },
            new PromptPart("file") { Mime = "text/plain", Url = text, Filename = "notes.txt" },
        ]));
        await watcher.WaitUntilAsync(w => Idle(w) && w.AllText().Contains("t3 ", StringComparison.Ordinal), AnswerTimeout, "the answer");

        var stored = await stack.StoredMessagesAsync(sessionId);
        var files = stored.EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray())
            .Where(p => p.GetProperty("type").GetString() == "file").ToList();
        Assert.Equal([png, text], files.Select(f => f.GetProperty("url").GetString()));
        Assert.Equal(["dot.png", "notes.txt"], files.Select(f => f.GetProperty("filename").GetString()));
        var shown = watcher.Read(w => w.View.PartsOfType("file").Select(p => p.Json.GetProperty("url").GetString()).ToList());
        Assert.Equal([png, text], shown);
    }

    [Fact]
    public async Task A_tool_streaming_400_lines_costs_compact_watchers_a_few_times_its_output_and_ends_byte_identical()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var sessionId = await CreateSessionAsync(gateway, "long tool output");
        var forms = new (string Name, GatewayHubClientOptions Options)[]
        {
            ("compact JSON", GatewayHost.As() with { ObserveWebSocket = true }),
            ("compact MessagePack", GatewayHost.As() with { ObserveWebSocket = true, MessagePack = true }),
            ("full JSON", GatewayHost.As() with { ObserveWebSocket = true, Events = EventForms.Full }),
        };
        var watchers = new List<ObservedSession>();
        foreach (var (_, options) in forms)
        {
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, sessionId, options: options));
        }

        var bytesBefore = watchers.Select(w => w.Socket.BytesReceived).ToList();
        var command = """for i in $(seq 1 400); do echo "line $i: lorem ipsum dolor sit amet, consectetur adipiscing elit"; sleep 0.005; done""";
        var args = JsonSerializer.Serialize(new { command, description = "400 lines" });
        await watchers[0].Client.PromptAsync(new PromptRequest(sessionId, $"run it tool=bash args={args}"));
        await watchers[0].WaitUntilAsync(w => w.View.Permissions.Count == 1, AnswerTimeout, "permission request");
        await watchers[0].Client.ReplyPermissionAsync(new PermissionReplyRequest(sessionId, watchers[0].Read(w => w.View.Permissions.Ids().Single()), "once"));
        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => Idle(x) && x.AllText().Contains("Tool finished.", StringComparison.Ordinal), AnswerTimeout, "the run's end");
        }

        var stored = await stack.StoredMessagesAsync(sessionId);
        var tool = stored.EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray()).Single(p => p.GetProperty("type").GetString() == "tool");
        var final = tool.GetProperty("state").GetProperty("output").GetString()!;
        Assert.True(final.Length > 20_000, $"output {final.Length} chars");
        Assert.Equal(final, tool.GetProperty("state").GetProperty("metadata").GetProperty("output").GetString());
        await AssertShownAndFinalAsync(sessionId, [.. watchers]);

        for (var i = 0; i < forms.Length; i++)
        {
            var bytes = watchers[i].Socket.BytesReceived - bytesBefore[i];
            var grew = watchers[i].Read(w => w.ShownCountOf(StreamedFields.ToolMetadataOutput));
            output.WriteLine($"{forms[i].Name}: {bytes:N0} bytes for {final.Length:N0} chars of output ({(double)bytes / final.Length:0.00}x), "
                + $"{grew} moments of the streamed output recorded, {watchers[i].Read(w => w.CompactApplied)} compact deltas");
            if (i < 2)
            {
                Assert.True(bytes <= 3 * final.Length, $"{forms[i].Name}: {bytes} bytes > 3x the output ({final.Length})");
            }
        }

        foreach (var w in watchers)
        {
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task Sixty_turns_snapshot_a_bounded_window_and_page_back_to_every_stored_message()
    {
        // Sixty prompts within a minute or two: past the default per-user prompt limit (tested on its own).
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl, ("Gateway:Limits:PromptsPerMinute", "120"));
        var sessionId = await CreateSessionAsync(gateway, "long session");
        await using var driver = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        var snapshotBytes = new Dictionary<int, int>();
        for (var turn = 1; turn <= 60; turn++)
        {
            await driver.Client.PromptAsync(new PromptRequest(sessionId, $"turn {turn} tokens=20 delay=0"));
            await driver.WaitUntilAsync(w => Idle(w) && w.AllText().Contains($"turn {turn} ", StringComparison.Ordinal)
                && w.View.Messages.Count >= 2 * turn && w.View.Messages[^1].Info.GetProperty("time").TryGetProperty("completed", out _), AnswerTimeout, $"turn {turn}");
            if (turn is 30 or 60)
            {
                await using var joiner = await gateway.ConnectHubAsync("alice");
                var join = await joiner.JoinAsync(new JoinRequest(sessionId));
                snapshotBytes[turn] = join.GetProperty("snapshot").GetRawText().Length;
                Assert.Equal(20, join.GetProperty("snapshot").GetProperty("messages").GetArrayLength());
            }
        }

        output.WriteLine($"snapshot bytes: 30 turns {snapshotBytes[30]:N0}, 60 turns {snapshotBytes[60]:N0} ({(double)snapshotBytes[60] / snapshotBytes[30]:0.00}x)");
        Assert.True(snapshotBytes[60] <= 1.2 * snapshotBytes[30]);

        // Page back to the start: every message byte-identical to opencode's.
        await using var reader = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        var pages = 0;
        while (await reader.Session.LoadEarlierAsync(25))
        {
            pages++;
        }

        var stored = (await stack.StoredMessagesAsync(sessionId)).EnumerateArray().ToList();
        var held = reader.Read(w => w.View.Messages.ToList());
        Assert.Equal(120, stored.Count);
        Assert.Equal(stored.Count, held.Count);
        Assert.Equal(4, pages); // 100 older messages, 25 a page
        for (var i = 0; i < stored.Count; i++)
        {
            Assert.True(JsonElement.DeepEquals(stored[i].GetProperty("info"), held[i].Info), $"message {i} info");
            var storedParts = stored[i].GetProperty("parts").EnumerateArray().ToList();
            Assert.Equal(storedParts.Count, held[i].Parts.Count);
            Assert.All(storedParts.Zip(held[i].Parts), p => Assert.True(JsonElement.DeepEquals(p.First, p.Second.Json), $"message {i}: {p.First}\n{p.Second.Json}"));
        }

        // Bad cursors are refused with a code, the connection stays.
        var bad = await Assert.ThrowsAsync<GatewayException>(() => reader.Client.LoadEarlierAsync(new LoadEarlierRequest(sessionId, "not-a-cursor")));
        Assert.Equal("bad_request", bad.Code);
    }

    [Fact]
    public async Task Another_users_subagent_sessions_stay_invisible()
    {
        await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
        var root = await CreateSessionAsync(gateway, "alice's run", "alice");
        await using var alice = await ObservedSession.StartAsync(gateway.HubUrl, root);
        await using var bob = await gateway.ConnectHubAsync("bob");
        var bobSession = await CreateSessionAsync(gateway, "bob's", "bob");
        await bob.JoinAsync(new JoinRequest(bobSession));

        await alice.Client.PromptAsync(new PromptRequest(root, SubagentPrompt));
        await alice.WaitUntilAsync(w => w.View.Permissions.Count == 1, AnswerTimeout, "the subagent's permission request");
        var request = alice.Read(w => w.View.Permissions.Single());
        var child = request.GetProperty("sessionID").GetString()!;
        var requestId = request.GetProperty("id").GetString()!;

        foreach (var call in new Func<Task>[]
        {
            () => bob.JoinAsync(new JoinRequest(child)),
            () => bob.ReplyPermissionAsync(new PermissionReplyRequest(child, requestId, "once")),
            () => bob.ReplyPermissionAsync(new PermissionReplyRequest(root, requestId, "once")),
            () => bob.ReplyQuestionAsync(new QuestionReplyRequest(child, "que_x1", [["Red"]])),
            () => bob.RejectQuestionAsync(new QuestionRejectRequest(child, "que_x1")),
            () => bob.LoadEarlierAsync(new LoadEarlierRequest(child, "eyJpZCI6Im1zZ194IiwidGltZSI6MX0")),
        })
        {
            Assert.Equal("session_not_found", (await Assert.ThrowsAsync<HubException>(call)).GatewayCode());
        }

        // bob's own session does not answer for alice's request either.
        Assert.Equal("permission_not_found", (await Assert.ThrowsAsync<HubException>(
            () => bob.ReplyPermissionAsync(new PermissionReplyRequest(bobSession, requestId, "once")))).GatewayCode());
        Assert.Equal(1, alice.Read(w => w.View.Permissions.Count));
        await alice.Client.ReplyPermissionAsync(new PermissionReplyRequest(child, requestId, "once"));
        await alice.WaitUntilAsync(w => Idle(w) && w.AllText().Contains("Tool finished.", StringComparison.Ordinal), AnswerTimeout, "the run's end");
        // Nothing of alice's run reached bob: every event bob received is of his own session.
        while (await bob.NextAsync(nameof(ISessionClient.SessionEvent), TimeSpan.FromMilliseconds(200)) is { } received)
        {
            Assert.Equal(bobSession, received.GetProperty("sessionId").GetString());
            Assert.False(received.TryGetProperty("childSessionId", out _));
        }

        var bobsList = await bob.ListSessionsAsync();
        Assert.DoesNotContain(bobsList.GetProperty("items").EnumerateArray(), s => s.GetProperty("sessionId").GetString() == child);
    }
}
