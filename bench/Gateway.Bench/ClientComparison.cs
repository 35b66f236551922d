using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Testing;
using HandWritten = OpencodeGateway.TestClient;

namespace OpencodeGateway.Bench;

/// <summary>
/// The load generator's two candidate clients side by side, on one gateway process per client: the hand-written
/// JSON-protocol client and the official one (<see cref="GatewayHubClient"/>). Only what does not depend on how busy
/// the machine is: the load generator's managed heap and RSS per open connection, the bytes each watcher receives,
/// and what the load generator allocates per event it receives.
/// </summary>
internal static class ClientComparison
{
    private sealed record Probe(string Type, string? Field, string? Delta);

    private interface IClient : IAsyncDisposable
    {
        long BytesReceived { get; }
        bool IsClosed { get; }
    }

    private sealed class HandWrittenClient(HandWritten.HubConnection connection) : IClient
    {
        public long BytesReceived => connection.BytesReceived;
        public bool IsClosed => connection.IsClosed;
        public ValueTask DisposeAsync() => connection.DisposeAsync();
    }

    private sealed class OfficialClient(GatewayHubClient client) : IClient
    {
        public long BytesReceived => client.BytesReceived;
        public bool IsClosed => client.IsClosed;
        public ValueTask DisposeAsync() => client.DisposeAsync();
    }

    public static async Task<object> RunAsync(Args a)
    {
        var dll = a.Get("gateway-dll");
        var gwPort = a.Int("gateway-port", 5496);
        var upPort = a.Int("fake-port", 5499);
        var logDir = a.Get("log-dir", ".");
        var n = a.Int("connections", 1000);
        var sessionCount = a.Int("sessions", 10);
        var eventsPerSession = a.Int("events", 200);
        var results = new List<object>();
        foreach (var kind in a.Get("clients", "hand-written,official").Split(','))
        {
            await using var fake = await FakeUpstream.StartAsync(upPort);
            await using var gw = await GatewayProcess.StartAsync(dll, gwPort, fake.BaseUrl, Path.Combine(logDir, $"gateway-clients-{kind}.log"), []);
            var sessions = Enumerable.Range(0, sessionCount).Select(i => $"ses_clients{i:D5}").ToArray();
            long received = 0;
            void OnDelta(string? type) => Interlocked.Increment(ref received);

            // Warm the client code (JIT, pools) so that the baseline holds what every connection shares.
            await DisposeAllAsync(await ConnectAsync(kind, gw, 20, sessions, OnDelta));
            var heap0 = GC.GetTotalMemory(forceFullCollection: true);
            var rss0 = Proc.RssBytes(Environment.ProcessId);
            var clients = await ConnectAsync(kind, gw, n, sessions, OnDelta);
            var heap1 = GC.GetTotalMemory(forceFullCollection: true);
            var rss1 = Proc.RssBytes(Environment.ProcessId);

            var bytes0 = clients.Sum(c => c.BytesReceived);
            var alloc0 = GC.GetTotalAllocatedBytes(precise: true);
            var target = (long)eventsPerSession * sessionCount;
            fake.SetRate(sessions, 50 * sessionCount);
            while (fake.Emitted < target)
            {
                await Task.Delay(50);
            }

            fake.SetRate([], 0);
            var expected = fake.Emitted * (n / sessionCount);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Interlocked.Read(ref received) < expected && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            var alloc1 = GC.GetTotalAllocatedBytes(precise: true);
            var events = Interlocked.Read(ref received);
            var bytes1 = clients.Sum(c => c.BytesReceived);
            var result = new Dictionary<string, object>
            {
                ["client"] = kind, ["connections"] = n, ["open"] = clients.Count(c => !c.IsClosed),
                ["loadGenHeapPerConnectionKB"] = Math.Round((heap1 - heap0) / 1024.0 / n, 2),
                ["loadGenRssPerConnectionKB"] = Math.Round((rss1 - rss0) / 1024.0 / n, 2),
                ["bytesPerConnectionToJoin"] = Math.Round((double)bytes0 / n, 1),
                ["eventsExpected"] = expected, ["eventsReceived"] = events,
                ["bytesPerEventPerWatcher"] = events == 0 ? double.NaN : Math.Round((double)(bytes1 - bytes0) / events, 2),
                ["loadGenAllocatedBytesPerEvent"] = events == 0 ? double.NaN : Math.Round((double)(alloc1 - alloc0) / events, 1),
            };
            Console.Error.WriteLine("[clients] " + string.Join(' ', result.Select(kv => $"{kv.Key}={kv.Value}")));
            results.Add(result);
            await DisposeAllAsync(clients);
            received = 0;
        }

        return new Dictionary<string, object> { ["runs"] = results };
    }

    private static async Task<List<IClient>> ConnectAsync(string kind, GatewayProcess gw, int n, string[] sessions, Action<string?> onDelta)
    {
        var result = new IClient[n];
        var next = -1;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < n)
            {
                var sessionId = sessions[i % sessions.Length];
                if (kind == "hand-written")
                {
                    var conn = await HandWritten.HubConnection.ConnectAsync(gw.HubUrl, new HandWritten.HubConnectionOptions
                    {
                        CloneHandlerArguments = false, ReceiveBufferSize = 4096, HandshakeTimeout = TimeSpan.FromSeconds(60),
                        ConfigureWebSocket = o => o.SetRequestHeader("X-Api-Key", GatewayProcess.ApiKey),
                    });
                    conn.On("SessionEvent", args => onDelta(args[0].GetProperty("type").GetString()));
                    await conn.InvokeAsync("Join", [new { sessionId }]);
                    result[i] = new HandWrittenClient(conn);
                }
                else
                {
                    var client = await GatewayHubClient.ConnectAsync(gw.HubUrl, new GatewayHubClientOptions
                    {
                        ApiKey = GatewayProcess.ApiKey, RecordEvents = false, ObserveWebSocket = true,
                    });
                    client.Connection.On<Probe>("SessionEvent", e => onDelta(e.Type));
                    await client.JoinAsync(new Contracts.JoinRequest(sessionId));
                    result[i] = new OfficialClient(client);
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(50, Math.Max(1, n))).Select(_ => Worker()));
        return [.. result];
    }

    private static async Task DisposeAllAsync(IEnumerable<IClient> clients)
    {
        var list = clients.ToList();
        for (var i = 0; i < list.Count; i += 200)
        {
            await Task.WhenAll(list.Skip(i).Take(200).Select(c => c.DisposeAsync().AsTask()));
        }
    }
}
