using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Bench;

/// <summary>
/// What the load generator's client (the official SignalR client, through the tests' <c>GatewayHubClient</c>) costs the
/// load generator itself, measured on one gateway process: managed heap and RSS per open connection, bytes each watcher
/// receives, bytes allocated per event received. None of it depends on how busy the machine is.
/// </summary>
internal static class ClientCost
{
    public static async Task<object> RunAsync(Args a)
    {
        var dll = a.Get("gateway-dll");
        var gwPort = a.Int("gateway-port", 5496);
        var upPort = a.Int("fake-port", 5499);
        var logDir = a.Get("log-dir", ".");
        var n = a.Int("connections", 1000);
        var sessionCount = a.Int("sessions", 10);
        var eventsPerSession = a.Int("events", 200);
        await using var fake = await FakeUpstream.StartAsync(upPort);
        await using var gw = await GatewayProcess.StartAsync(dll, gwPort, fake.BaseUrl, Path.Combine(logDir, "gateway-client-cost.log"), []);
        var sessions = Enumerable.Range(0, sessionCount).Select(i => $"ses_clients{i:D5}").ToArray();
        long received = 0;
        var form = WireForm.OfProtocol(a.Get("protocol", "json"));
        void Setup(Testing.GatewayHubClient client, int _) =>
            ScenarioB.OnTextDeltas(client, form, _ => Interlocked.Increment(ref received), null);

        // Warm the client code (JIT, pools) so that the baseline holds what every connection shares.
        await ScenarioB.DisposeAllAsync(await ScenarioB.ConnectAsync(gw.HubUrl, 20, i => sessions[i % sessionCount], Setup, form));
        var heap0 = GC.GetTotalMemory(forceFullCollection: true);
        var rss0 = Proc.RssBytes(Environment.ProcessId);
        var clients = await ScenarioB.ConnectAsync(gw.HubUrl, n, i => sessions[i % sessionCount], Setup, form);
        var heap1 = GC.GetTotalMemory(forceFullCollection: true);
        var rss1 = Proc.RssBytes(Environment.ProcessId);

        var bytes0 = clients.Sum(c => c.BytesReceived);
        var alloc0 = GC.GetTotalAllocatedBytes(precise: true);
        fake.SetRate(sessions, 50 * sessionCount);
        while (fake.Emitted < (long)eventsPerSession * sessionCount)
        {
            await Task.Delay(50);
        }

        fake.SetRate([], 0);
        await Task.Delay(500); // the last batch the fake was writing
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
            ["client"] = "official", ["protocol"] = form.Name, ["connections"] = n, ["open"] = clients.Count(c => !c.IsClosed),
            ["loadGenHeapPerConnectionKB"] = Math.Round((heap1 - heap0) / 1024.0 / n, 2),
            ["loadGenRssPerConnectionKB"] = Math.Round((rss1 - rss0) / 1024.0 / n, 2),
            ["bytesPerConnectionToJoin"] = Math.Round((double)bytes0 / n, 1),
            ["eventsExpected"] = expected, ["eventsReceived"] = events,
            ["bytesPerEventPerWatcher"] = events == 0 ? double.NaN : Math.Round((double)(bytes1 - bytes0) / events, 2),
            ["loadGenAllocatedBytesPerEvent"] = events == 0 ? double.NaN : Math.Round((double)(alloc1 - alloc0) / events, 1),
        };
        Console.Error.WriteLine("[client-cost] " + string.Join(' ', result.Select(kv => $"{kv.Key}={kv.Value}")));
        await ScenarioB.DisposeAllAsync(clients);
        return result;
    }
}
