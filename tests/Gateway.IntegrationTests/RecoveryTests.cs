using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// Recovery on the real opencode (README, "Client rules: gaps"): what a watcher shows at every event is a prefix of
/// opencode's final text or marked with gaps that explain it, a new epoch reaches clients as a snapshot before any of
/// its events, oversized calls get the documented answer, and mass joins cost opencode O(1) REST calls.
/// </summary>
[Collection(OpencodeCollection.Name)]
public sealed class RecoveryTests(OpencodeStack stack, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(120);

    private static bool Finished(ObservedSession w, string lastToken) =>
        w.View.StatusType == "idle" && w.AllText().Contains(lastToken, StringComparison.Ordinal);

    /// <summary>The gateway in front of <paramref name="upstream"/>, once it holds the upstream's event stream.</summary>
    private static Task<GatewayHost> StartGatewayAsync(Uri upstream, Action<WebApplicationBuilder>? configure = null,
        params (string Key, string Value)[] settings) =>
        GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = upstream, Configure = configure, Settings = settings.ToDictionary(s => s.Key, s => (string?)s.Value),
        });

    private static async Task<string> CreateSessionAsync(GatewayHost gateway, string title)
    {
        await using var connection = await gateway.ConnectHubAsync("alice");
        return (await connection.CreateSessionAsync(new CreateSessionRequest(title))).GetProperty("id").GetString()!;
    }

    private async Task<Dictionary<string, string>> StoredTextsAsync(string sessionId) =>
        (await stack.StoredMessagesAsync(sessionId)).EnumerateArray().SelectMany(m => m.GetProperty("parts").EnumerateArray())
            .Where(p => p.TryGetProperty("text", out _))
            .ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("text").GetString()!);

    [Fact]
    public async Task Cutting_the_upstream_stream_mid_answer_never_shows_a_fragment_as_the_text()
    {
        await using var proxy = await UpstreamProxy.StartAsync(stack.BaseUrl);
        // A reconnect delay long enough that tokens stream while nobody reads: the gap is real.
        await using var gateway = await StartGatewayAsync(proxy.BaseUrl, settings:
            [("Gateway:Streaming:ReconnectInitialDelay", "00:00:00.400"), ("Gateway:Streaming:ReconnectMaxDelay", "00:00:00.800")]);
        var sessionId = await CreateSessionAsync(gateway, "cut stream");
        var watchers = new List<ObservedSession>();
        for (var i = 0; i < 3; i++)
        {
            watchers.Add(await ObservedSession.StartAsync(gateway.HubUrl, sessionId));
        }

        await watchers[0].Client.PromptAsync(new PromptRequest(sessionId, "answer tokens=1000 delay=10"));
        foreach (var token in new[] { "t300 ", "t650 " })
        {
            await watchers[0].WaitUntilAsync(w => w.AllText().Contains(token, StringComparison.Ordinal), AnswerTimeout, token);
            proxy.CutEventStreams();
            // While the stream is down the gateway says nothing new; once it is back, watchers carry on.
            await watchers[0].WaitUntilAsync(w => w.PushedSnapshots >= 1 && w.View.StatusType == "busy", AnswerTimeout, "resynchronised");
        }

        foreach (var w in watchers)
        {
            await w.WaitUntilAsync(x => Finished(x, "t1000 "), AnswerTimeout, "1000-token answer");
        }

        var stored = OpencodeText.AllText(await stack.StoredMessagesAsync(sessionId));
        var final = await StoredTextsAsync(sessionId);
        foreach (var w in watchers)
        {
            Assert.Equal(stored, w.Read(x => x.AllText()));
            Assert.Empty(w.Read(x => x.ShownTextViolations(id => final.GetValueOrDefault(id))));
            // A new epoch reached each watcher as a pushed snapshot, never as an event first.
            Assert.Equal(0, w.Read(x => x.EventsBeforeTheirEpochSnapshot));
            Assert.True(w.Read(x => x.PushedSnapshots) >= 2, $"pushed snapshots: {w.Read(x => x.PushedSnapshots)}");
            Assert.True(w.Read(x => x.GapOffsetsShown().Count > 0), "no gap was ever shown: the cut lost nothing?");
            // What the gateway held when the stream broke was kept: gaps come after it, never at a part's start.
            Assert.All(w.Read(x => x.GapOffsetsShown().ToList()), offset => Assert.True(offset > 0, "text held before the cut was dropped"));
            Assert.Empty(w.Read(x => x.Failures));
        }

        Assert.Equal(3, proxy.StreamConnections);
        output.WriteLine($"pushed snapshots per watcher: {string.Join(", ", watchers.Select(w => w.PushedSnapshots))}");
        foreach (var w in watchers)
        {
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task Two_hundred_concurrent_snapshot_joins_of_a_streaming_session_cost_opencode_a_handful_of_calls()
    {
        await using var proxy = await UpstreamProxy.StartAsync(stack.BaseUrl);
        // 201 tabs of one user: past the default per-user connection limit (tested on its own).
        await using var gateway = await StartGatewayAsync(proxy.BaseUrl, settings: ("Gateway:Limits:ConnectionsPerUser", "300"));
        var sessionId = await CreateSessionAsync(gateway, "mass join");
        await using var first = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);
        await first.Client.PromptAsync(new PromptRequest(sessionId, "answer tokens=600 delay=10"));
        await first.WaitUntilAsync(w => w.AllText().Contains("t100 ", StringComparison.Ordinal), AnswerTimeout, "100 tokens");

        proxy.ResetCounts();
        var joined = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => ObservedSession.StartAsync(gateway.HubUrl, sessionId)));
        var rest = proxy.RestRequests;
        output.WriteLine($"REST calls for 200 joins: {rest.Count} ({string.Join(", ", rest.GroupBy(r => r).Select(g => $"{g.Key} ×{g.Count()}"))})");
        Assert.True(rest.Count <= 10, $"{rest.Count} REST calls to opencode for 200 joins");
        Assert.All(joined, w => Assert.Equal(1, w.Snapshots));

        foreach (var w in joined)
        {
            await w.WaitUntilAsync(x => Finished(x, "t600 "), AnswerTimeout, "600-token answer");
        }

        var stored = OpencodeText.AllText(await stack.StoredMessagesAsync(sessionId));
        var final = await StoredTextsAsync(sessionId);
        foreach (var w in joined)
        {
            Assert.Equal(stored, w.Read(x => x.AllText()));
            Assert.Empty(w.Read(x => x.ShownTextViolations(id => final.GetValueOrDefault(id))));
            await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_oversized_call_closes_only_its_connection_with_the_documented_error_and_is_logged_once()
    {
        var logs = new RecordingLoggerProvider();
        await using var gateway = await StartGatewayAsync(stack.BaseUrl, b => b.Logging.AddProvider(logs));
        var sessionId = await CreateSessionAsync(gateway, "oversized");
        await using var bystander = await ObservedSession.StartAsync(gateway.HubUrl, sessionId);

        // Over the prompt limit but within the message limit: a coded error, and the connection stays.
        await using var connection = await gateway.ConnectHubAsync("alice");
        var tooLong = await Assert.ThrowsAsync<HubException>(() => connection.PromptAsync(new PromptRequest(sessionId, new string('x', 300_000))));
        Assert.Equal("payload_too_large", tooLong.GatewayCode());
        await connection.JoinAsync(new JoinRequest(sessionId));

        // Over the message limit (10 MB): SignalR cannot read it, so it closes this connection and says why.
        await Assert.ThrowsAnyAsync<Exception>(() => connection.PromptAsync(new PromptRequest(sessionId, new string('x', 10_000_000))));
        var reason = await connection.Closed.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"close: {reason?.Message}");
        // The default limit follows the attachment limit (Gateway:Prompts:MaxAttachmentBytes, 5 MiB): 7,842,476 bytes.
        Assert.Contains("maximum message size of 7842476B was exceeded", reason?.Message, StringComparison.Ordinal);

        // Nobody else noticed.
        await bystander.Client.ListSessionsAsync();
        Assert.False(bystander.IsClosed);
        await Eventually.HoldsAsync(() => logs.Count("sent a message over Gateway:Hub:MaximumReceiveMessageSize") > 0, "the oversized call logged",
            TimeSpan.FromSeconds(10));
        Assert.Equal(1, logs.Count("sent a message over Gateway:Hub:MaximumReceiveMessageSize"));
    }

    /// <summary>Keeps every log line the gateway writes (warning and above), to count them.</summary>
    private sealed class RecordingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public int Count(string fragment) => _lines.Count(l => l.Contains(fragment, StringComparison.Ordinal));

        public ILogger CreateLogger(string categoryName) => new Logger(_lines);

        public void Dispose()
        {
        }

        private sealed class Logger(ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    lines.Enqueue(formatter(state, exception));
                }
            }
        }
    }
}
