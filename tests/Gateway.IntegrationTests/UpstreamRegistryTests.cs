using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// An opencode server registered at run time on a single node, beside the configured one: a real second opencode,
/// served at once, streaming answers byte-identical to what it stores; removed mid-answer, its watchers are told and
/// stay connected, and its sessions answer <c>upstream_not_found</c>.
/// </summary>
[Collection(OpencodeCollection.Name)]
public sealed class UpstreamRegistryTests(OpencodeStack stack, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task A_second_opencode_registered_at_run_time_streams_answers_byte_identical_and_removed_mid_answer_its_sessions_answer_upstream_not_found()
    {
        var second = new OpencodeStack(FreePorts.Take(1, withNext: true)[0]);
        await second.InitializeAsync();
        try
        {
            await using var gateway = await GatewayHost.StartAsync(stack.BaseUrl);
            using var admin = gateway.ApiKeyClient(GatewayHost.AdminApiKey);
            var streamsBefore = second.GlobalEventConnections();

            var registering = Stopwatch.StartNew();
            using (var created = await admin.PostAsJsonAsync("api/upstreams", new RegisterUpstreamRequest("second", second.BaseUrl.ToString())))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            await using var alice = await gateway.ConnectHubAsync("alice");
            var sessionId = (await alice.CreateSessionAsync(new CreateSessionRequest("registered", Upstream: "second"))).GetProperty("id").GetString()!;
            output.WriteLine($"a session created on the registered opencode {registering.ElapsedMilliseconds} ms after POST /api/upstreams");
            var watchers = new[] { await ObservedSession.StartAsync(gateway.HubUrl, sessionId), await ObservedSession.StartAsync(gateway.HubUrl, sessionId) };
            try
            {
                await watchers[0].Client.PromptAsync(new PromptRequest(sessionId, "registered tokens=300 delay=4"));
                foreach (var w in watchers)
                {
                    await w.WaitUntilAsync(x => x.View.StatusType == "idle" && x.AllText().Contains("t300 ", StringComparison.Ordinal), AnswerTimeout, "300-token answer");
                }

                var stored = OpencodeText.AllText(await second.StoredMessagesAsync(sessionId));
                Assert.NotEmpty(stored);
                Assert.All(watchers, w => Assert.Equal(stored, w.Read(x => x.AllText())));
                Assert.All(watchers, w => Assert.Empty(w.Read(x => x.Failures)));
                // One event stream on the registered opencode, whatever the number of watchers.
                Assert.Equal(1, second.GlobalEventConnections() - streamsBefore);

                // Removed in the middle of the next answer.
                await watchers[0].Client.PromptAsync(new PromptRequest(sessionId, "removed tokens=3000 delay=10"));
                await watchers[0].WaitUntilAsync(w => w.AllText().Contains("t100 ", StringComparison.Ordinal), AnswerTimeout, "100 tokens of the second answer");
                using (var removed = await admin.DeleteAsync("api/upstreams/second"))
                {
                    Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
                }

                // Every watcher is told, sees the run end, and stays connected.
                foreach (var w in watchers)
                {
                    await w.WaitUntilAsync(x => x.View.Error is { } error && error.GetRawText().Contains("\"upstream_not_found\"", StringComparison.Ordinal) && x.View.StatusType == "idle",
                        TimeSpan.FromSeconds(15), "an upstream_not_found error and the run idle");
                    Assert.False(w.IsClosed);
                    Assert.Empty(w.Read(x => x.Failures));
                }

                await watchers[1].Client.ListSessionsAsync();
                var join = await Assert.ThrowsAsync<HubException>(() => alice.JoinAsync(new JoinRequest(sessionId)));
                Assert.Equal(GatewayErrorCodes.UpstreamNotFound, join.GatewayCode());
                var prompt = await Assert.ThrowsAsync<HubException>(() => alice.PromptAsync(new PromptRequest(sessionId, "anyone?")));
                Assert.Equal(GatewayErrorCodes.UpstreamNotFound, prompt.GatewayCode());

                // The configured opencode goes on serving.
                var onLocal = (await alice.CreateSessionAsync(new CreateSessionRequest("configured"))).GetProperty("id").GetString()!;
                await using var local = await ObservedSession.StartAsync(gateway.HubUrl, onLocal);
                await local.Client.PromptAsync(new PromptRequest(onLocal, "configured tokens=20"));
                await local.WaitUntilAsync(x => x.View.StatusType == "idle" && x.AllText().Contains("t20 ", StringComparison.Ordinal), AnswerTimeout, "the configured upstream's answer");
                Assert.Equal(OpencodeText.AllText(await stack.StoredMessagesAsync(onLocal)), local.Read(x => x.AllText()));
            }
            finally
            {
                foreach (var w in watchers)
                {
                    await w.DisposeAsync();
                }
            }
        }
        finally
        {
            await second.DisposeAsync();
        }
    }
}
