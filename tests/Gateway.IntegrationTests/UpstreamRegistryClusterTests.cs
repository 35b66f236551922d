using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.IntegrationTests;

/// <summary>
/// Upstreams registered and removed at run time on the three-node cluster (deploy/cluster/cluster.sh): every node serves
/// a new upstream within 5 s and answers <c>upstream_not_found</c> for a removed one within 5 s; 30 upstreams spread over
/// the nodes with one event stream each, taken over within 10 s of a node's SIGKILL and spread again, and again over all
/// three when the node returns.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class UpstreamRegistryClusterTests(ClusterStack cluster, ITestOutputHelper output)
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan PickUp = TimeSpan.FromSeconds(5);

    private async Task<HttpResponseMessage> AdminAsync(HttpMethod method, int node, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(cluster.NodeUrl(node), path))
        {
            Content = body is null ? null : JsonContent.Create(body),
        };
        request.Headers.Add("X-Api-Key", cluster.Env("ADMIN_API_KEY"));
        return await cluster.Http.SendAsync(request);
    }

    /// <summary>What node <paramref name="node"/>'s <c>GET /api/upstreams</c> says, by upstream id.</summary>
    private async Task<Dictionary<string, JsonElement>> UpstreamsAsync(int node)
    {
        using var response = await AdminAsync(HttpMethod.Get, node, "api/upstreams");
        return (await response.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>())
            .EnumerateArray().ToDictionary(u => u.GetProperty("id").GetString()!);
    }

    /// <summary>Waits until <paramref name="done"/> holds, at most <paramref name="timeout"/> after <paramref name="since"/>; returns how long after it that was.</summary>
    private static async Task<TimeSpan> UntilAsync(Stopwatch since, Func<Task<bool>> done, string what, TimeSpan timeout)
    {
        await Eventually.HoldsAsync(done, what, timeout - since.Elapsed);
        return since.Elapsed;
    }

    [Fact]
    public async Task A_real_opencode_registered_through_one_node_is_served_by_all_three_within_5_s_and_removed_through_another_answers_upstream_not_found_on_all()
    {
        var second = new OpencodeStack(FreePorts.Take(1, withNext: true)[0]);
        await second.InitializeAsync();
        await using var proxy = await UpstreamProxy.StartAsync(second.BaseUrl);
        var watchers = new List<ObservedSession>();
        GatewayHubClient[] clients = [];
        try
        {
            // A client on every node, connected first: the times measured below are the registry's, not a connection's.
            clients = await Task.WhenAll(Enumerable.Range(1, cluster.NodeCount).Select(node => GatewayHubClient.ConnectAsync(cluster.HubUrl(node), cluster.As())));
            using (var created = await AdminAsync(HttpMethod.Post, 1, "api/upstreams", new RegisterUpstreamRequest("second", proxy.BaseUrl.ToString())))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            // Every node lists it and serves sessions on it: the client on each creates one there.
            var registered = Stopwatch.StartNew();
            var listing = Task.WhenAll(Enumerable.Range(1, cluster.NodeCount).Select(node =>
                UntilAsync(registered, async () => (await UpstreamsAsync(node)).ContainsKey("second"), $"node-{node} listing the registered upstream", PickUp)));
            var sessions = new string[cluster.NodeCount + 1];
            var serving = Task.WhenAll(Enumerable.Range(1, cluster.NodeCount).Select(node =>
                UntilAsync(registered, async () =>
                {
                    try
                    {
                        sessions[node] = (await clients[node - 1].CreateSessionAsync(new CreateSessionRequest($"on node {node}", Upstream: "second")))
                            .GetProperty("id").GetString()!;
                        return true;
                    }
                    catch (HubException e) when (e.GatewayCode() == GatewayErrorCodes.UpstreamNotFound)
                    {
                        return false;
                    }
                }, $"node-{node} serving the registered upstream", PickUp)));
            var (listedAfter, servedAfter) = (await listing, await serving);
            output.WriteLine("registered through node-1; listed by " + string.Join(", ", listedAfter.Select((t, i) => $"node-{i + 1} after {t.TotalMilliseconds:0} ms"))
                + "; a session created on it through " + string.Join(", ", servedAfter.Select((t, i) => $"node-{i + 1} after {t.TotalMilliseconds:0} ms")));

            // One session watched on every node streams an answer byte-identical to what the registered opencode stores.
            var sessionId = sessions[2];
            for (var node = 1; node <= cluster.NodeCount; node++)
            {
                watchers.Add(await ObservedSession.StartAsync(cluster.HubUrl(node), sessionId, options: cluster.As()));
                watchers.Add(await ObservedSession.StartAsync(cluster.HubUrl(node), sessionId, options: cluster.As()));
            }

            await watchers[^1].Client.PromptAsync(new PromptRequest(sessionId, "registered tokens=300 delay=5"));
            foreach (var w in watchers)
            {
                await w.WaitUntilAsync(x => x.View.StatusType == "idle" && x.AllText().Contains("t300 ", StringComparison.Ordinal), AnswerTimeout, "300-token answer");
            }

            var stored = OpencodeText.AllText(await second.StoredMessagesAsync(sessionId));
            Assert.NotEmpty(stored);
            Assert.All(watchers, w => Assert.Equal(stored, w.Read(x => x.AllText())));
            Assert.All(watchers, w => Assert.Empty(w.Read(x => x.Failures)));
            // One event stream for the whole cluster.
            Assert.Equal((1, 1), (proxy.OpenStreams, proxy.MaxOpenStreams));
            var holder = (await UpstreamsAsync(1))["second"].GetProperty("holder").GetString();
            output.WriteLine($"the registered upstream's stream is read by {holder}");

            // Removed through node 3: within 5 s every node answers upstream_not_found for its sessions.
            using (var removed = await AdminAsync(HttpMethod.Delete, 3, "api/upstreams/second"))
            {
                Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
            }

            var removing = Stopwatch.StartNew();
            var refusedAfter = await Task.WhenAll(Enumerable.Range(1, cluster.NodeCount).Select(node =>
                UntilAsync(removing, async () =>
                {
                    try
                    {
                        await clients[node - 1].JoinAsync(new JoinRequest(sessions[node]));
                        return false;
                    }
                    catch (HubException e) when (e.GatewayCode() == GatewayErrorCodes.UpstreamNotFound)
                    {
                        return true;
                    }
                }, $"node-{node} answering upstream_not_found", PickUp)));
            output.WriteLine("removed through node-3; upstream_not_found from "
                + string.Join(", ", refusedAfter.Select((t, i) => $"node-{i + 1} after {t.TotalMilliseconds:0} ms")));

            // Every watcher, on every node, is told and stays connected; nobody reads the removed server any more.
            foreach (var w in watchers)
            {
                await w.WaitUntilAsync(x => x.View.Error is { } error && error.GetRawText().Contains("\"upstream_not_found\"", StringComparison.Ordinal), TimeSpan.FromSeconds(15),
                    "an upstream_not_found error event");
                Assert.False(w.IsClosed);
                Assert.Empty(w.Read(x => x.Failures));
            }

            await Eventually.HoldsAsync(() => proxy.OpenStreams == 0, "the removed upstream's event stream closed", TimeSpan.FromSeconds(10));
            for (var node = 1; node <= cluster.NodeCount; node++)
            {
                Assert.DoesNotContain("second", (await UpstreamsAsync(node)).Keys);
            }

            Assert.Equal(1, proxy.MaxOpenStreams);
        }
        finally
        {
            foreach (var w in watchers)
            {
                await w.DisposeAsync();
            }

            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            (await AdminAsync(HttpMethod.Delete, 1, "api/upstreams/second")).Dispose();
            await second.DisposeAsync();
        }
    }

    [Fact]
    public async Task Thirty_upstreams_spread_over_three_nodes_one_stream_each_a_killed_nodes_taken_over_within_10_s_and_spread_again_when_it_returns()
    {
        const int count = 30;
        var fakes = new List<FakeOpencode>();
        var proxies = new List<UpstreamProxy>();
        var ids = Enumerable.Range(0, count).Select(i => $"fake-{i:D2}").ToList();
        var killed = 0;
        try
        {
            for (var i = 0; i < count; i++)
            {
                fakes.Add(await FakeOpencode.StartAsync());
                proxies.Add(await UpstreamProxy.StartAsync(fakes[i].BaseUrl));
            }

            var registering = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                using var created = await AdminAsync(HttpMethod.Post, 1 + i % cluster.NodeCount, "api/upstreams",
                    new RegisterUpstreamRequest(ids[i], proxies[i].BaseUrl.ToString()));
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            }

            var registered = registering.Elapsed;
            // Balanced: with M upstreams (the configured one too) over N nodes, none holds more than ceil(M/N) + 1.
            var spread = new Dictionary<string, int>();
            async Task<bool> BalancedAsync(int asked, IReadOnlyCollection<int> nodes)
            {
                var upstreams = await UpstreamsAsync(asked);
                var most = (upstreams.Count + nodes.Count - 1) / nodes.Count + 1;
                spread = upstreams.Values.GroupBy(u => u.TryGetProperty("holder", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString()! : "nobody")
                    .ToDictionary(g => g.Key, g => g.Count());
                return upstreams.Count == count + 1
                    && spread.Keys.Order().SequenceEqual(nodes.Select(n => $"node-{n}"))
                    && spread.Values.All(held => held <= most)
                    && proxies.All(p => p.OpenStreams == 1) && fakes.All(f => f.Subscribers == 1);
            }

            var all = Enumerable.Range(1, cluster.NodeCount).ToList();
            var settled = await UntilAsync(registering, () => BalancedAsync(1, all), "31 upstreams read, spread over the 3 nodes", TimeSpan.FromSeconds(30));
            output.WriteLine($"{count} upstreams registered in {registered.TotalSeconds:0.0} s; all {count + 1} read and spread after "
                + $"{settled.TotalSeconds:0.0} s: {string.Join(", ", spread.OrderBy(s => s.Key).Select(s => $"{s.Key} {s.Value}"))}");
            Assert.All(proxies, p => Assert.Equal(1, p.MaxOpenStreams));

            // A node killed: the survivors take its upstreams over within 10 s and spread them again, one stream each.
            killed = int.Parse(spread.Where(s => s.Key.StartsWith("node-", StringComparison.Ordinal)).MaxBy(s => s.Value).Key["node-".Length..],
                System.Globalization.CultureInfo.InvariantCulture);
            var itsShare = spread[$"node-{killed}"];
            foreach (var proxy in proxies)
            {
                proxy.ResetCounts();
            }

            var survivors = all.Where(n => n != killed).ToList();
            await cluster.KillNodeAsync(killed);
            var killing = Stopwatch.StartNew();
            var takenOver = await UntilAsync(killing, () => BalancedAsync(survivors[0], survivors),
                $"node-{killed}'s upstreams read by the 2 others, spread", TimeSpan.FromSeconds(20));
            output.WriteLine($"node-{killed} (holding {itsShare}) killed; its upstreams taken over and spread after {takenOver.TotalSeconds:0.0} s: "
                + string.Join(", ", spread.OrderBy(s => s.Key).Select(s => $"{s.Key} {s.Value}")));
            Assert.True(takenOver < TimeSpan.FromSeconds(10), $"taken over after {takenOver.TotalSeconds:0.0} s");
            // Never two streams of one upstream at once.
            Assert.All(proxies, p => Assert.Equal(1, p.MaxOpenStreams));

            // The node back: the others hand it its share (each hand-over a release, then its acquisition).
            var rejoining = Stopwatch.StartNew();
            await cluster.StartNodeAsync(killed);
            var rejoined = killed;
            killed = 0;
            var respread = await UntilAsync(rejoining, () => BalancedAsync(1, all), $"node-{rejoined} back with its share", TimeSpan.FromSeconds(60));
            output.WriteLine($"node-{rejoined} started again; the leases spread over the 3 nodes after {respread.TotalSeconds:0.0} s (the node's start included): "
                + string.Join(", ", spread.OrderBy(s => s.Key).Select(s => $"{s.Key} {s.Value}")));
            Assert.All(proxies, p => Assert.Equal(1, p.MaxOpenStreams));
        }
        finally
        {
            var asked = killed == 1 ? 2 : 1;
            foreach (var id in ids)
            {
                (await AdminAsync(HttpMethod.Delete, asked, $"api/upstreams/{id}")).Dispose();
            }

            foreach (var proxy in proxies)
            {
                await proxy.DisposeAsync();
            }

            foreach (var fake in fakes)
            {
                await fake.DisposeAsync();
            }

            if (killed != 0)
            {
                await cluster.StartNodeAsync(killed);
            }
        }
    }
}
