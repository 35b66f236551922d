using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Contracts.Serialization;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Ingest;

// Allocation and time per upstream event on the pump's path, over the captured opencode stream
// (tests/Gateway.Tests/Fixtures/global-event.sse, 379 events of which 158 are text deltas). Every number is per event
// (OperationsPerInvoke = events per invocation).
var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithId("short"))
    .AddDiagnoser(MemoryDiagnoser.Default)
    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
BenchmarkSwitcher.FromAssembly(typeof(PumpPath).Assembly).Run(args, config);

[MemoryDiagnoser]
public class PumpPath
{
    private const int Events = 379;
    private const int Deltas = 158;
    private const int Watchers = 1000;
    private byte[][] _all = null!;
    private byte[][] _deltas = null!;
    private IHubProtocol _protocol = null!;
    private IHubProtocol _messagePack = null!;
    private SerializedHubMessage _shared = null!;

    [GlobalSetup]
    public void Setup()
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "global-event.sse"));
        text = text[(text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        _all = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal))
            .Select(l => Encoding.UTF8.GetBytes(l["data: ".Length..].TrimEnd('\r'))).ToArray();
        if (_all.Length != Events) throw new InvalidOperationException($"expected {Events} events, got {_all.Length}");
        _deltas = _all.Where(l => Encoding.UTF8.GetString(l).Contains("\"message.part.delta\"")).ToArray();
        if (_deltas.Length != Deltas) throw new InvalidOperationException($"expected {Deltas} deltas, got {_deltas.Length}");
        var options = new JsonHubProtocolOptions();
        options.PayloadSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        _protocol = new JsonHubProtocol(Options.Create(options));
        _messagePack = new MessagePackHubProtocol(Options.Create(new MessagePackHubProtocolOptions { SerializerOptions = GatewayMessagePack.SerializerOptions }));
        var session = NewSession();
        _shared = new SerializedHubMessage(new InvocationMessage("SessionEvent", [Apply(session, _deltas[0])[^1]]));
    }

    private static LiveSession NewSession() => new(new SessionKey("local", "ses_e02d88428ffekWX1w9mH7ak34F"), 1, 4096, 1 << 20, 0);

    private static List<SessionEvent> Apply(LiveSession session, byte[] line)
    {
        var output = new List<SessionEvent>(2);
        session.Apply(OpencodeEventNormalizer.Normalize(line), output);
        return output;
    }

    /// <summary>Parse one SSE data line into an UpstreamEvent.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public int Normalize()
    {
        var n = 0;
        foreach (var line in _all) n += (int)OpencodeEventNormalizer.Normalize(line).Kind;
        return n;
    }

    /// <summary>Normalise + apply to live state (seq, replay log, text) for every event of the stream.</summary>
    [Benchmark(OperationsPerInvoke = Events)]
    public int NormalizeApply()
    {
        var session = NewSession();
        var n = 0;
        foreach (var line in _all)
        {
            var e = OpencodeEventNormalizer.Normalize(line);
            if (e.SessionId is not null)
            {
                var output = new List<SessionEvent>(2);
                session.Apply(e, output);
                n += output.Count;
            }
        }

        return n;
    }

    /// <summary>The whole per-event path of a text delta: normalise, apply, serialise the hub message once.</summary>
    [Benchmark(OperationsPerInvoke = Deltas)]
    public int DeltaNormalizeApplySerialize()
    {
        var session = NewSession();
        var n = 0;
        foreach (var line in _deltas)
        {
            var evt = Apply(session, line)[^1];
            var message = new SerializedHubMessage(new InvocationMessage("SessionEvent", [evt]));
            n += message.GetSerializedMessage(_protocol).Length;
        }

        return n;
    }

    /// <summary>The same with the default (compact) form: the delta as <c>D(s, seq, h, offset, delta)</c>, JSON.</summary>
    [Benchmark(OperationsPerInvoke = Deltas)]
    public int DeltaNormalizeApplySerializeCompact() => DeltaCompact(_protocol);

    /// <summary>The same, compact, in MessagePack.</summary>
    [Benchmark(OperationsPerInvoke = Deltas)]
    public int DeltaNormalizeApplySerializeCompactMessagePack() => DeltaCompact(_messagePack);

    /// <summary>The full event in MessagePack (through the contract's JSON form, see GatewayMessagePack).</summary>
    [Benchmark(OperationsPerInvoke = Deltas)]
    public int DeltaNormalizeApplySerializeFullMessagePack()
    {
        var session = NewSession();
        var n = 0;
        foreach (var line in _deltas)
        {
            var evt = Apply(session, line)[^1];
            n += new SerializedHubMessage(new InvocationMessage("SessionEvent", [evt])).GetSerializedMessage(_messagePack).Length;
        }

        return n;
    }

    private int DeltaCompact(IHubProtocol protocol)
    {
        var session = NewSession();
        var n = 0;
        foreach (var line in _deltas)
        {
            var evt = Apply(session, line)[^1];
            var message = new SerializedHubMessage(new InvocationMessage("D", [7, evt.Seq, evt.Handle, evt.Offset, evt.Delta]));
            n += message.GetSerializedMessage(protocol).Length;
        }

        return n;
    }

    /// <summary>What a group send of one event to 1000 connections costs in serialisation (cached after the first).</summary>
    [Benchmark(OperationsPerInvoke = Watchers)]
    public int SerializedOncePerGroupSend()
    {
        var n = 0;
        for (var i = 0; i < Watchers; i++) n += _shared.GetSerializedMessage(_protocol).Length;
        return n;
    }
}
