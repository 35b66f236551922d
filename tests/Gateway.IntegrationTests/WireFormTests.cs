using OpencodeGateway.Client;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// The event forms and protocols on the real opencode (README, "Client rules"): JSON full, JSON compact (the default)
/// and MessagePack clients of one answer with reasoning, through a cut of the upstream stream, a late joiner and a
/// client that drops and rejoins, all end byte-identical to opencode's stored text and to each other, and every one of
/// them shows only a prefix of opencode's final text, or one marked with gaps, at every event it applies.
/// </summary>
[Collection(OpencodeCollection.Name)]
public sealed class WireFormTests(OpencodeStack stack, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(120);

    private static bool Finished(ObservedSession w) =>
        w.View.StatusType == "idle" && w.AllText().Contains("t600 ", StringComparison.Ordinal);

    private static GatewayHubClientOptions Form(string? events, bool messagePack) =>
        GatewayHost.As() with { Events = events, MessagePack = messagePack, ObserveWebSocket = true };

    [Fact]
    public async Task Full_compact_and_MessagePack_clients_end_byte_identical_to_opencode_and_to_each_other()
    {
        await using var proxy = await UpstreamProxy.StartAsync(stack.BaseUrl);
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = proxy.BaseUrl,
            Settings = { ["Gateway:Streaming:ReconnectInitialDelay"] = "00:00:00.300", ["Gateway:Streaming:ReconnectMaxDelay"] = "00:00:00.600" },
        });
        string sessionId;
        await using (var creator = await gateway.ConnectHubAsync("alice"))
        {
            sessionId = (await creator.CreateSessionAsync(new CreateSessionRequest("wire forms"))).GetProperty("id").GetString()!;
        }

        var forms = new (string Name, GatewayHubClientOptions Options)[]
        {
            ("json full", Form(EventForms.Full, false)), ("json compact", Form(null, false)),
            ("msgpack compact", Form(EventForms.Compact, true)), ("msgpack full", Form(EventForms.Full, true)),
        };
        var watchers = new List<(string Name, ObservedSession Watcher)>();
        foreach (var (name, options) in forms)
        {
            watchers.Add((name, await ObservedSession.StartAsync(gateway.HubUrl, sessionId, options: options)));
        }

        var dropper = await ObservedSession.StartAsync(gateway.HubUrl, sessionId, options: Form(null, false));
        var first = watchers[0].Watcher;
        await first.Client.PromptAsync(new PromptRequest(sessionId, "answer reasoning=40 tokens=600 delay=8"));

        await dropper.WaitUntilAsync(w => w.AllText().Contains("t50 ", StringComparison.Ordinal), AnswerTimeout, "50 tokens");
        var dropped = dropper.View;
        await dropper.DisposeAsync();
        await first.WaitUntilAsync(w => w.AllText().Contains("t150 ", StringComparison.Ordinal), AnswerTimeout, "150 tokens");
        watchers.Add(("compact, rejoined with since", await ObservedSession.StartAsync(gateway.HubUrl, sessionId, dropped, Form(null, false))));
        watchers.Add(("msgpack compact, late", await ObservedSession.StartAsync(gateway.HubUrl, sessionId, options: Form(null, true))));
        Assert.Equal(1, watchers[^2].Watcher.Recoveries);
        Assert.Equal(1, watchers[^1].Watcher.Snapshots);

        // A new epoch mid-answer: compact clients follow it through the pushed snapshot's session handle.
        await first.WaitUntilAsync(w => w.AllText().Contains("t300 ", StringComparison.Ordinal), AnswerTimeout, "300 tokens");
        proxy.CutEventStreams();

        foreach (var (name, w) in watchers)
        {
            await w.WaitUntilAsync(Finished, AnswerTimeout, $"{name}: 600-token answer");
        }

        var storedMessages = await stack.StoredMessagesAsync(sessionId);
        var stored = OpencodeText.AllText(storedMessages);
        var final = storedMessages.EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray())
            .Where(p => p.TryGetProperty("text", out _))
            .ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("text").GetString()!);
        Assert.Contains(final.Values, text => text.StartsWith("r1 r2 ", StringComparison.Ordinal)); // reasoning streamed too
        var reference = first.Read(w => StreamedTexts(w.View));
        foreach (var (name, w) in watchers)
        {
            Assert.Equal(stored, w.Read(x => x.AllText()));
            Assert.Equal(reference, w.Read(x => StreamedTexts(x.View)));
            Assert.All(w.Read(x => StreamedTextsById(x.View)), p => Assert.Equal(final[p.Key], p.Value));
            Assert.Empty(w.Read(x => x.ShownTextViolations(id => final.GetValueOrDefault(id))));
            Assert.Empty(w.Read(x => x.HandleViolations));
            Assert.Empty(w.Read(x => x.Failures));
            Assert.Equal(0, w.Read(x => x.EventsBeforeTheirEpochSnapshot));
            Assert.True(w.Read(x => x.PushedSnapshots) >= 1, $"{name}: the new epoch's snapshot");
            var compact = w.Read(x => x.CompactApplied);
            Assert.True(name.Contains("full", StringComparison.Ordinal) ? compact == 0 : compact > 300, $"{name}: {compact} compact deltas");
            output.WriteLine($"{name}: {w.Socket.BytesReceived:N0} bytes received, {compact} compact deltas, " +
                $"{w.Read(x => x.EventsApplied)} events applied, {w.Read(x => x.CompactIgnored)} compact deltas of a left epoch");
        }

        // Same events, fewer bytes: full JSON > compact JSON > compact MessagePack.
        var bytes = watchers.Take(3).Select(w => w.Watcher.Socket.BytesReceived).ToList();
        Assert.True(bytes[0] > 2 * bytes[1] && bytes[1] > bytes[2], string.Join(", ", bytes));
        foreach (var (_, w) in watchers)
        {
            await w.DisposeAsync();
        }
    }

    /// <summary>Every streamed part's text (text and reasoning), in order, one line each.</summary>
    private static string StreamedTexts(SessionView view) =>
        string.Join("\n", StreamedTextsById(view).Select(p => $"{p.Key}: {p.Value}"));

    private static List<KeyValuePair<string, string>> StreamedTextsById(SessionView view) =>
        [.. view.Parts.Where(p => p.Text is not null && p.Type is "text" or "reasoning").Select(p => KeyValuePair.Create(p.Id, p.Text!))];
}
