using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

namespace OpencodeGateway.Bench;

/// <summary>CPU time and memory of any process, from /proc (Linux).</summary>
internal static class Proc
{
    private static readonly double TicksPerSecond = 100.0; // CLK_TCK, 100 on every Linux we run on

    /// <summary>utime + stime in seconds.</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // after "pid (comm) ": field 3 is state = rest[0]; utime = field 14 = rest[11], stime = rest[12]
        return (long.Parse(rest[11], CultureInfo.InvariantCulture) + long.Parse(rest[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>Resident set size in bytes.</summary>
    public static long RssBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    public static double SelfCpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    /// <summary>Established TCP connections whose remote port is <paramref name="port"/> (client side sockets on this host).</summary>
    public static int EstablishedTo(int port)
    {
        var n = 0;
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(file)) continue;
            foreach (var line in File.ReadLines(file).Skip(1))
            {
                var cols = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (cols.Length < 4 || cols[3] != "01") continue;
                var rem = cols[2];
                var p = int.Parse(rem[(rem.IndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (p == port) n++;
            }
        }

        return n;
    }
}

/// <summary>Latency histogram in microseconds: 20 µs buckets to 200 ms, then 5 ms buckets to 20 s. Thread-safe adds.</summary>
internal sealed class Histogram
{
    private const int FineBuckets = 10_000; // 20 µs each -> 200 ms
    private const int CoarseBuckets = 3_960; // 5 ms each -> 20 s
    private long[] _counts = new long[FineBuckets + CoarseBuckets + 1];
    private long _max;

    public void Add(double micros)
    {
        if (micros < 0) micros = 0;
        int i = micros < 200_000 ? (int)(micros / 20) : Math.Min(FineBuckets + (int)((micros - 200_000) / 5_000), FineBuckets + CoarseBuckets);
        Interlocked.Increment(ref _counts[i]);
        var m = (long)micros;
        long cur;
        while (m > (cur = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, m, cur) != cur) { }
    }

    public void Reset()
    {
        _counts = new long[_counts.Length];
        Volatile.Write(ref _max, 0);
    }

    public long Count => _counts.Sum();
    public double MaxMs => Volatile.Read(ref _max) / 1000.0;

    /// <summary>Percentile in milliseconds (upper edge of the bucket).</summary>
    public double PercentileMs(double p)
    {
        var counts = _counts;
        var total = counts.Sum();
        if (total == 0) return double.NaN;
        var rank = (long)Math.Ceiling(p / 100.0 * total);
        long seen = 0;
        for (var i = 0; i < counts.Length; i++)
        {
            seen += counts[i];
            if (seen >= rank)
            {
                return i < FineBuckets ? (i + 1) * 20 / 1000.0 : 200 + (i - FineBuckets + 1) * 5.0;
            }
        }

        return MaxMs;
    }
}

/// <summary>
/// The gateway as a separate process (<c>dotnet Gateway.dll</c>), so its CPU and memory are its own; or, for scenario
/// B's baseline, the bare broadcaster (<c>dotnet Gateway.BareBroadcaster.dll</c>) started and read the same way.
/// </summary>
internal sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;

    private GatewayProcess(Process process, Uri baseUrl, string log, string hubPath)
    {
        _process = process;
        BaseUrl = baseUrl;
        Log = log;
        HubUrl = new Uri(baseUrl, hubPath);
    }

    public int Pid => _process.Id;
    public Uri BaseUrl { get; }
    /// <summary>Where clients connect: the session hub, or the bare broadcaster's WebSocket endpoint.</summary>
    public Uri HubUrl { get; }
    public string Log { get; }

    /// <summary>The load generator's credential: an admin API key, so it may watch sessions that have no record.</summary>
    public const string ApiKey = "bench-admin-api-key";

    public static async Task<GatewayProcess> StartAsync(string dll, int port, Uri upstream, string log, IEnumerable<string> extraArgs)
    {
        var keyHash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(ApiKey)));
        var data = Directory.CreateTempSubdirectory("gateway-bench-").FullName;
        var args = $"exec dotnet '{dll}' --urls http://127.0.0.1:{port} --Gateway:Upstreams:0:Id=local " +
                   $"--Gateway:Upstreams:0:BaseUrl={upstream} --Logging:LogLevel:Default=Warning " +
                   $"--Gateway:Auth:ApiKeys:0:KeyHash={keyHash} --Gateway:Auth:ApiKeys:0:Admin=true --Gateway:Auth:ApiKeys:0:Name=bench " +
                   $"--Gateway:Store:DataDirectory={data} " +
                   // (the idle scenario holds 10,000 connections and more; earlier gateways ignore the setting)
                   "--Gateway:Limits:ConnectionsPerNode=1000000 " +
                   string.Join(' ', extraArgs.Select(a => $"'{a}'")) + $" >>'{log}' 2>&1";
        return await StartProcessAsync(args, port, log, "hubs/session");
    }

    /// <summary>The bare broadcaster in front of the same upstream, with the same runtime settings as the gateway.</summary>
    public static Task<GatewayProcess> StartBareAsync(string dll, int port, Uri upstream, string log) =>
        StartProcessAsync($"exec dotnet '{dll}' --urls http://127.0.0.1:{port} --upstream={upstream} >>'{log}' 2>&1", port, log, "ws");

    private static async Task<GatewayProcess> StartProcessAsync(string args, int port, string log, string hubPath)
    {
        var psi = new ProcessStartInfo("/bin/sh", ["-c", args]) { UseShellExecute = false };
        psi.Environment["DOTNET_gcServer"] = Environment.GetEnvironmentVariable("BENCH_GATEWAY_GCSERVER") ?? "1";
        // Runtime knobs for the gateway alone (the load generator keeps its own), e.g. "DOTNET_TieredPGO=0 X=1".
        foreach (var setting in (Environment.GetEnvironmentVariable("BENCH_GATEWAY_ENV") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = setting.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"BENCH_GATEWAY_ENV: '{setting}' is not NAME=VALUE");
            psi.Environment[setting[..eq]] = setting[(eq + 1)..];
        }

        var process = Process.Start(psi)!;
        var gw = new GatewayProcess(process, new Uri($"http://127.0.0.1:{port}/"), log, hubPath);
        try
        {
            await gw.WaitReadyAsync();
            return gw;
        }
        catch
        {
            await gw.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Waits until <c>/readyz</c> answers 200 and the upstream's event stream is connected: for the gateway, its
    /// <c>GET /api/upstreams</c> says so (its readiness is its own dependencies only); the bare broadcaster's readiness is
    /// its stream.
    /// </summary>
    public async Task WaitReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"gateway exited ({_process.ExitCode}); see {Log}");
            try
            {
                using var r = await http.GetAsync(new Uri(BaseUrl, "readyz"));
                if (r.IsSuccessStatusCode && (HubUrl.AbsolutePath != "/hubs/session" || await StreamConnectedAsync(http))) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(200);
        }

        throw new TimeoutException($"gateway not ready in 60 s; see {Log}");
    }

    private async Task<bool> StreamConnectedAsync(HttpClient http)
    {
        using var response = await http.GetAsync(new Uri(BaseUrl, "api/upstreams"));
        return response.IsSuccessStatusCode
            && (await response.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().All(u => u.GetProperty("connected").GetBoolean());
    }

    public double CpuSeconds => Proc.CpuSeconds(Pid);

    /// <summary>
    /// The gateway's <c>/metrics</c> (OpenTelemetry's Prometheus exporter), summed by metric name over its label sets:
    /// e.g. <c>dotnet_process_cpu_time_seconds_total</c> is user + system CPU.
    /// </summary>
    public async Task<Dictionary<string, double>> MetricsAsync() =>
        (await SamplesAsync()).GroupBy(s => s.Name).ToDictionary(g => g.Key, g => g.Sum(s => s.Value));

    /// <summary>The gateway's own dispatch-time histogram from <c>/metrics</c>: (upper bound in s, cumulative count).</summary>
    public async Task<List<(double Le, long Count)>> DispatchHistogramAsync() =>
        [.. (await SamplesAsync()).Where(s => s.Name == "gateway_pump_dispatch_duration_seconds_bucket")
            .GroupBy(s => s.Labels["le"])
            .Select(g => (Le: g.Key == "+Inf" ? double.PositiveInfinity : double.Parse(g.Key, CultureInfo.InvariantCulture), Count: (long)g.Sum(s => s.Value)))
            .OrderBy(b => b.Le)];

    /// <summary>Every sample line of <c>/metrics</c>: <c>name{label="value",…} value</c>.</summary>
    private async Task<List<(string Name, Dictionary<string, string> Labels, double Value)>> SamplesAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        // (the gateway runs in Production: its internals are for admins)
        http.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        var text = await http.GetStringAsync(new Uri(BaseUrl, "metrics"));
        var samples = new List<(string, Dictionary<string, string>, double)>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#')) continue;
            var space = line.LastIndexOf(' ');
            var series = line[..space];
            var brace = series.IndexOf('{');
            var labels = new Dictionary<string, string>();
            if (brace >= 0)
            {
                foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(series[brace..], "(\\w+)=\"((?:[^\"\\\\]|\\\\.)*)\""))
                {
                    labels[m.Groups[1].Value] = m.Groups[2].Value;
                }
            }

            samples.Add((brace >= 0 ? series[..brace] : series, labels, double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture)));
        }

        return samples;
    }

    /// <summary>
    /// The upper bound (ms) of the bucket holding percentile <paramref name="p"/> of what was recorded between two
    /// reads of <see cref="DispatchHistogramAsync"/>: "p99 ≤ this", as precise as the buckets are.
    /// </summary>
    public static double? PercentileBoundMs(List<(double Le, long Count)> before, List<(double Le, long Count)> after, double p)
    {
        // Before the first recorded event the histogram is not exported at all: count that as zeros.
        long Before(int i) => before.Count == 0 ? 0 : before[i].Count;
        if (after.Count == 0) return null;
        var total = after[^1].Count - Before(after.Count - 1);
        if (total == 0) return null;
        var rank = Math.Ceiling(p / 100 * total);
        for (var i = 0; i < after.Count; i++)
        {
            if (after[i].Count - Before(i) >= rank) return after[i].Le * 1000;
        }

        return double.PositiveInfinity;
    }
    public long Rss => Proc.RssBytes(Pid);

    public async ValueTask DisposeAsync()
    {
        if (_process.HasExited) return;
        try { Process.Start("kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit(); } catch { }
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { _process.Kill(); }
    }
}

/// <summary>Managed heap of another .NET process right after a full blocking GC it is made to run (EventPipe, GCHeapCollect).</summary>
internal static class HeapProbe
{
    /// <summary>
    /// Live bytes by type after a full blocking GC, from an EventPipe heap snapshot (what dotnet-gcdump collects,
    /// aggregated by type name only): which objects make up the memory per connection.
    /// </summary>
    public static List<(string Type, long Bytes, long Count)> LiveBytesByType(int pid)
    {
        var client = new DiagnosticsClient(pid);
        var providers = new[] { new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GCHeapSnapshot) };
        using var session = client.StartEventPipeSession(providers, requestRundown: false);
        using var source = new EventPipeEventSource(session.EventStream);
        var names = new Dictionary<ulong, string>();
        var sizes = new Dictionary<ulong, (long Bytes, long Count)>();
        var done = false;
        source.Clr.TypeBulkType += e =>
        {
            for (var i = 0; i < e.Count; i++) names[e.Values(i).TypeID] = e.Values(i).TypeName;
        };
        source.Clr.GCBulkNode += e =>
        {
            for (var i = 0; i < e.Count; i++)
            {
                var v = e.Values(i);
                sizes[v.TypeID] = sizes.TryGetValue(v.TypeID, out var t) ? (t.Bytes + (long)v.Size, t.Count + 1) : ((long)v.Size, 1);
            }
        };
        source.Clr.GCStop += _ =>
        {
            if (sizes.Count > 0 && !done)
            {
                done = true;
                // the type names of the last nodes follow the GC's end; give them a moment
                Task.Delay(2000).ContinueWith(_ => { try { session.Stop(); } catch { } });
            }
        };
        var processing = Task.Run(() => source.Process());
        if (!processing.Wait(TimeSpan.FromSeconds(120)))
        {
            try { session.Stop(); } catch { }
        }

        return [.. sizes.Select(kv => (names.GetValueOrDefault(kv.Key, $"type {kv.Key:x}"), kv.Value.Bytes, kv.Value.Count)).OrderByDescending(t => t.Item2)];
    }

    public static long ManagedHeapAfterFullGc(int pid)
    {
        var client = new DiagnosticsClient(pid);
        var keywords = (long)(ClrTraceEventParser.Keywords.GC | ClrTraceEventParser.Keywords.GCHeapCollect);
        var providers = new[] { new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Informational, keywords) };
        using var session = client.StartEventPipeSession(providers, requestRundown: false);
        using var source = new EventPipeEventSource(session.EventStream);
        long result = -1;
        var induced = false;
        source.Clr.GCStart += e =>
        {
            induced = e.Depth == 2 && e.Reason == Microsoft.Diagnostics.Tracing.Parsers.Clr.GCReason.Induced;
        };
        source.Clr.GCHeapStats += e =>
        {
            if (induced && result < 0)
            {
                result = e.TotalHeapSize;
                Console.Error.WriteLine($"[heap] after an induced full GC: gen0 {e.GenerationSize0 / 1048576.0:F1} MB, gen1 {e.GenerationSize1 / 1048576.0:F1} MB, " +
                    $"gen2 {e.GenerationSize2 / 1048576.0:F1} MB, LOH {e.GenerationSize3 / 1048576.0:F1} MB, POH {e.GenerationSize4 / 1048576.0:F1} MB, " +
                    $"total {e.TotalHeapSize / 1048576.0:F1} MB");
                try { session.Stop(); } catch { }
            }
        };
        var processing = Task.Run(() => source.Process());
        if (!processing.Wait(TimeSpan.FromSeconds(30)))
        {
            try { session.Stop(); } catch { }
        }

        return result;
    }
}

internal static class Json
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static void Write(string path, object value) => File.WriteAllText(path, JsonSerializer.Serialize(value, Options));
}

internal sealed class Args(string[] args)
{
    private readonly Dictionary<string, string> _values = args.Skip(1).Select(a => a.TrimStart('-').Split('=', 2))
        .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "true", StringComparer.OrdinalIgnoreCase);

    public string Command => args.Length > 0 ? args[0] : "";
    public string Get(string key, string? fallback = null) =>
        _values.TryGetValue(key, out var v) ? v : fallback ?? throw new ArgumentException($"missing --{key}=");
    public int Int(string key, int fallback) => _values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public double Double(string key, double fallback) => _values.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
    public int[] Ints(string key, string fallback) => Get(key, fallback).Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
}
