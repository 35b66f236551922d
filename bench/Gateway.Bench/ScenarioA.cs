using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Bench;

/// <summary>
/// Headline: W watchers of one answer on the real opencode, each with its own <c>GET /global/event</c> ("direct") or
/// joined through the gateway. Measures opencode CPU, upstream stream connections, bytes per watcher and delivery
/// latency from the mock LLM's token time to the watcher receiving the delta holding that token.
/// </summary>
internal static class ScenarioA
{
    private sealed class Watcher(int tokens)
    {
        /// <summary>Unix time (s) at which token i was first seen; 0 = not yet.</summary>
        public readonly double[] Seen = new double[tokens + 1];
        public long Bytes;
        public int Tokens;
        public volatile bool Idle;
        public readonly TaskCompletionSource Done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnDelta(ReadOnlySpan<char> delta)
        {
            var now = DateTime.UtcNow.Subtract(DateTime.UnixEpoch).TotalSeconds;
            // tokens are "t{i} "; a delta may hold several (coalesced) or, in principle, a piece of one
            var i = 0;
            while ((i = delta.IndexOf('t')) >= 0)
            {
                delta = delta[(i + 1)..];
                var end = delta.IndexOf(' ');
                if (end <= 0) break;
                if (int.TryParse(delta[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 && n < Seen.Length && Seen[n] == 0)
                {
                    Seen[n] = now;
                    Tokens++;
                }

                delta = delta[end..];
            }

            Check();
        }

        public void OnIdle()
        {
            Idle = true;
            Check();
        }

        private void Check()
        {
            if (Idle && Tokens >= Seen.Length - 1) Done.TrySetResult();
        }
    }

    public static async Task<object> RunAsync(Args a)
    {
        Dictionary<string, string> ReadEnv() => File.ReadAllLines(a.Get("oc-env")).Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        var env = ReadEnv();
        var oc = new Uri(env["OC_BASE_URL"].TrimEnd('/') + "/");
        var ocPid = int.Parse(env["OC_PID"], CultureInfo.InvariantCulture);
        var ocPort = oc.Port;
        var ocLog = env["OC_LOG"];
        var mockLog = env["MOCK_LOG"];
        var dll = a.Get("gateway-dll");
        var gwPort = a.Int("gateway-port", 5496);
        var logDir = a.Get("log-dir", ".");
        var watchersList = a.Ints("watchers", "1,10,100,500");
        var tokens = a.Int("tokens", 2000);
        var warmupTokens = a.Int("warmup-tokens", 200);
        // A command that restarts opencode (same port and data). opencode keeps serving event streams whose clients
        // have gone for a while (it warns about an EventEmitter listener leak after the 500-watcher run), which
        // would bill one run's subscribers to the next; so every recorded run starts on a fresh opencode.
        var restart = a.Get("oc-restart", "");
        var delay = a.Int("delay", 10);
        // gateway: the default form (compact deltas, JSON); -msgpack: MessagePack; -full: ?events=full (every event whole);
        // -coalesced: the default form with Gateway:Streaming:CoalesceWindow = --coalesce-window.
        var modes = a.Get("modes", "direct,gateway,gateway-msgpack,gateway-full").Split(',');
        var idleSeconds = a.Double("idle-seconds", 2);
        var extra = a.Get("gateway-args", "").Split(' ', StringSplitOptions.RemoveEmptyEntries);

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5) })
        { BaseAddress = oc, Timeout = Timeout.InfiniteTimeSpan };
        var runs = new List<object>();
        // "global event connected" lines in opencode's log before this opencode process (or, without restarts, this mode) began
        var connectedBaseline = 0;
        async Task FreshOpencodeAsync(GatewayProcess? gw)
        {
            if (restart.Length == 0) return;
            connectedBaseline = CountConnected(ocLog);
            using (var p = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", restart]) { UseShellExecute = false, RedirectStandardOutput = true })!)
            {
                await p.StandardOutput.ReadToEndAsync();
                await p.WaitForExitAsync();
                if (p.ExitCode != 0) throw new InvalidOperationException($"'{restart}' exited with {p.ExitCode}");
            }

            ocPid = int.Parse(ReadEnv()["OC_PID"], CultureInfo.InvariantCulture);
            if (gw is not null) await gw.WaitReadyAsync(); // its pump reconnects to the new opencode
        }

        foreach (var mode in modes)
        {
            GatewayProcess? gw = null;
            connectedBaseline = CountConnected(ocLog);
            if (mode.StartsWith("gateway", StringComparison.Ordinal))
            {
                // "gateway-coalesced": the same gateway with Gateway:Streaming:CoalesceWindow = --coalesce-window
                var args = mode == "gateway-coalesced"
                    ? extra.Append($"--Gateway:Streaming:CoalesceWindow={a.Get("coalesce-window", "00:00:00.050")}")
                    : extra;
                gw = await GatewayProcess.StartAsync(dll, gwPort, oc, Path.Combine(logDir, $"{mode}-A.log"), args);
            }

            try
            {
                foreach (var w in watchersList)
                {
                    await FreshOpencodeAsync(gw);
                    // A fresh opencode's first answer pays for its warm-up (JIT, caches, database): one short answer
                    // nobody records, so every recorded run is comparable with the rest.
                    Console.Error.WriteLine($"[A] {mode} W={w} (after a {warmupTokens}-token warm-up answer)");
                    await RunOneAsync(mode, 1, warmupTokens);
                    runs.Add(await RunOneAsync(mode, w, tokens));
                }
            }
            finally
            {
                if (gw is not null) await gw.DisposeAsync();
            }

            async Task<Dictionary<string, object?>> RunOneAsync(string mode, int w, int tokens)
            {
                var created = await (await http.PostAsJsonAsync("session", new { title = $"bench {mode} {w}" })).Content.ReadFromJsonAsync<JsonElement>();
                var sid = created.GetProperty("id").GetString()!;
                var watchers = Enumerable.Range(0, w).Select(_ => new Watcher(tokens)).ToArray();
                var connected0 = CountConnected(ocLog);
                using var stop = new CancellationTokenSource();
                var cleanup = new List<Func<Task>>();
                var sseTasks = new List<Task>();
                if (mode == "direct")
                {
                    var ready = new List<Task>();
                    foreach (var watcher in watchers)
                    {
                        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        ready.Add(first.Task);
                        sseTasks.Add(Task.Run(() => DirectWatchAsync(http, sid, watcher, first, stop.Token)));
                    }

                    await Task.WhenAll(ready).WaitAsync(TimeSpan.FromSeconds(120));
                }
                else
                {
                    var form = FormOf(mode);
                    var conns = await ScenarioB.ConnectAsync(gw!.HubUrl, w, _ => sid,
                        (conn, i) => ScenarioB.OnTextDeltas(conn, form, delta => watchers[i].OnDelta(delta), watchers[i].OnIdle), form);
                    cleanup.Add(() => ScenarioB.DisposeAllAsync(conns));
                    foreach (var (conn, watcher) in conns.Zip(watchers)) watcher.Bytes = -conn.BytesReceived;
                    cleanup.Insert(0, () =>
                    {
                        foreach (var (conn, watcher) in conns.Zip(watchers)) watcher.Bytes += conn.BytesReceived;
                        return Task.CompletedTask;
                    });
                }

                // opencode's own background CPU (idle), to tell it apart from the cost of the answer
                var idle0 = Proc.CpuSeconds(ocPid);
                await Task.Delay(TimeSpan.FromSeconds(idleSeconds));
                var idleRate = (Proc.CpuSeconds(ocPid) - idle0) / idleSeconds;
                var streamsOpened = CountConnected(ocLog) - connected0;
                var tag = $"bench{Guid.NewGuid():N}"[..16];
                var oc0 = Proc.CpuSeconds(ocPid); var gw0 = gw?.CpuSeconds ?? 0; var self0 = Proc.SelfCpuSeconds();
                if (mode == "direct") foreach (var watcher in watchers) Interlocked.Exchange(ref watcher.Bytes, 0);
                var dispatch0 = gw is null ? null : await gw.DispatchHistogramAsync();
                var sw = Stopwatch.StartNew();
                var prompt = await http.PostAsJsonAsync($"session/{sid}/prompt_async",
                    new { parts = new[] { new { type = "text", text = $"{tag} tokens={tokens} delay={delay}" } } });
                prompt.EnsureSuccessStatusCode();
                var maxTcp = 0;
                var all = Task.WhenAll(watchers.Select(x => x.Done.Task));
                var timeout = TimeSpan.FromSeconds(tokens * delay / 1000.0 * 4 + 60);
                while (!all.IsCompleted && sw.Elapsed < timeout)
                {
                    maxTcp = Math.Max(maxTcp, Proc.EstablishedTo(ocPort));
                    await Task.WhenAny(all, Task.Delay(500));
                }

                var elapsed = sw.Elapsed.TotalSeconds;
                var oc1 = Proc.CpuSeconds(ocPid); var gw1 = gw?.CpuSeconds ?? 0; var self1 = Proc.SelfCpuSeconds();
                var complete = watchers.Count(x => x.Done.Task.IsCompleted);
                var dispatch1 = gw is null ? null : await gw.DispatchHistogramAsync();
                foreach (var c in cleanup) await c();
                stop.Cancel();
                try { await Task.WhenAll(sseTasks).WaitAsync(TimeSpan.FromSeconds(10)); } catch { }

                await Task.Delay(300); // let the mock flush its token log
                var tokenTimes = ReadTokenTimes(mockLog, tag, tokens);
                var lat = new List<double>(w * tokens);
                foreach (var watcher in watchers)
                    for (var i = 1; i <= tokens; i++)
                        if (watcher.Seen[i] > 0 && tokenTimes[i] > 0) lat.Add((watcher.Seen[i] - tokenTimes[i]) * 1000);
                lat.Sort();
                double P(double p) => lat.Count == 0 ? double.NaN : Math.Round(lat[Math.Min(lat.Count - 1, (int)Math.Ceiling(p / 100 * lat.Count) - 1)], 2);
                var bytes = watchers.Select(x => (double)Interlocked.Read(ref x.Bytes)).ToArray();
                var result = new Dictionary<string, object?>
                {
                    ["mode"] = mode, ["protocol"] = mode == "direct" ? "sse" : FormOf(mode).MessagePack ? "msgpack" : "json",
                    ["events"] = mode == "direct" ? null : FormOf(mode).Events ?? EventForms.Compact, ["watchers"] = w, ["tokens"] = tokens, ["delayMs"] = delay, ["sessionId"] = sid,
                    ["answerSeconds"] = Math.Round(elapsed, 2), ["watchersComplete"] = complete,
                    ["opencodeCpuSeconds"] = Math.Round(oc1 - oc0, 2),
                    // minus what opencode burns when idle over the same time: the answer's own cost
                    ["opencodeAnswerCpuSeconds"] = Math.Round(Math.Max(0, oc1 - oc0 - idleRate * elapsed), 2),
                    ["opencodeIdleCpuPerSecond"] = Math.Round(idleRate, 3),
                    ["gatewayCpuSeconds"] = gw is null ? null : Math.Round(gw1 - gw0, 2),
                    ["loadGenCpuSeconds"] = Math.Round(self1 - self0, 2),
                    ["eventStreamsOpenedForRun"] = streamsOpened,
                    // every stream this opencode served: the gateway's one, or each direct watcher's (the warm-up's too)
                    ["eventStreamsTotal"] = CountConnected(ocLog) - connectedBaseline,
                    ["maxEstablishedTcpToOpencode"] = maxTcp,
                    ["bytesPerWatcherMean"] = bytes.Length == 0 ? 0 : Math.Round(bytes.Average()),
                    ["bytesPerWatcherMax"] = bytes.Length == 0 ? 0 : bytes.Max(),
                    ["answerTextBytes"] = Enumerable.Range(1, tokens).Sum(i => $"t{i} ".Length),
                    ["latencySamples"] = lat.Count, ["tokenTimesFound"] = tokenTimes.Count(t => t > 0),
                    ["latencyP50Ms"] = P(50), ["latencyP99Ms"] = P(99), ["latencyMaxMs"] = lat.Count == 0 ? double.NaN : Math.Round(lat[^1], 2),
                    // inside the gateway: upstream bytes read -> written or queued for every watcher (bucket bounds)
                    ["gatewayDispatchP50MsAtMost"] = dispatch0 is null ? null : GatewayProcess.PercentileBoundMs(dispatch0, dispatch1!, 50),
                    ["gatewayDispatchP99MsAtMost"] = dispatch0 is null ? null : GatewayProcess.PercentileBoundMs(dispatch0, dispatch1!, 99),
                };
                Console.Error.WriteLine("[A]   " + string.Join(' ', result.Select(kv => $"{kv.Key}={kv.Value}")));
                return result;
            }
        }

        return new Dictionary<string, object?>
        {
            ["opencodeVersion"] = env.GetValueOrDefault("OC_VERSION"), ["runs"] = runs,
        };
    }

    private static WireForm FormOf(string mode) => mode switch
    {
        "gateway" or "gateway-coalesced" => new WireForm("json", null, false),
        "gateway-msgpack" => new WireForm("msgpack", null, true),
        "gateway-full" => new WireForm("json-full", EventForms.Full, false),
        "gateway-msgpack-full" => new WireForm("msgpack-full", EventForms.Full, true),
        _ => throw new ArgumentException($"--modes: unknown mode '{mode}'"),
    };

    private static int CountConnected(string log) =>
        File.Exists(log) ? File.ReadLines(log).Count(l => l.Contains("message=\"global event connected\"", StringComparison.Ordinal)) : 0;

    /// <summary>Mock LLM's flush time (unix s) of each content chunk of the request whose last user text holds the tag.</summary>
    private static double[] ReadTokenTimes(string mockLog, string tag, int tokens)
    {
        var times = new double[tokens + 1];
        string? id = null;
        foreach (var line in File.ReadLines(mockLog))
        {
            if (id is null)
            {
                if (!line.Contains(tag, StringComparison.Ordinal)) continue;
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("kind", out var k) && k.GetString() == "text")
                    id = doc.RootElement.GetProperty("id").ToString();
                continue;
            }

            if (!line.Contains("\"i\"", StringComparison.Ordinal)) continue;
            using var d = JsonDocument.Parse(line);
            var r = d.RootElement;
            if (r.TryGetProperty("i", out var iEl) && r.GetProperty("id").ToString() == id && iEl.GetInt32() is var i && i <= tokens)
                times[i] = r.GetProperty("t").GetDouble();
        }

        return times;
    }

    /// <summary>One direct subscriber: its own <c>GET /global/event</c>, filtering its session's deltas client-side.</summary>
    private static async Task DirectWatchAsync(HttpClient http, string sid, Watcher watcher, TaskCompletionSource first, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync("global/event", HttpCompletionOption.ResponseHeadersRead, ct);
            await using var raw = await response.Content.ReadAsStreamAsync(ct);
            var counting = new CountingStream(raw, watcher);
            var sidBytes = Encoding.UTF8.GetBytes($"\"sessionID\":\"{sid}\"");
            var parser = SseParser.Create(counting, static (_, data) => data.ToArray());
            await foreach (var item in parser.EnumerateAsync(ct))
            {
                first.TrySetResult();
                var data = item.Data;
                // the cheap filter a browser client would do first: is it my session at all?
                if (data.AsSpan().IndexOf(sidBytes) < 0) continue;
                using var doc = JsonDocument.Parse(data);
                if (!doc.RootElement.TryGetProperty("payload", out var p) || !p.TryGetProperty("type", out var type)) continue;
                if (type.ValueEquals("message.part.delta"))
                {
                    var props = p.GetProperty("properties");
                    if (props.GetProperty("field").ValueEquals("text")) watcher.OnDelta(props.GetProperty("delta").GetString());
                }
                else if (type.ValueEquals("session.idle") ||
                         (type.ValueEquals("session.status") && p.GetProperty("properties").GetProperty("status").GetProperty("type").ValueEquals("idle")))
                {
                    watcher.OnIdle();
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            first.TrySetResult();
        }
    }

    private sealed class CountingStream(Stream inner, Watcher watcher) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) { var n = inner.Read(buffer, offset, count); Interlocked.Add(ref watcher.Bytes, n); return n; }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        { var n = await inner.ReadAsync(buffer, ct); Interlocked.Add(ref watcher.Bytes, n); return n; }
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
