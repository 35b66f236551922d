using System.Text;
using OpencodeGateway.Ingest;
using OpencodeGateway.Tests.Fixtures;

namespace OpencodeGateway.Tests;

public class OpencodeEventNormalizerTests
{
    [Theory]
    [InlineData("global-event.sse")]
    [InlineData("event.sse")]
    [InlineData("event-reasoning.sse")]
    [InlineData("event-instance-dispose.sse")]
    public void Captured_streams_normalise_without_a_malformed_event(string file)
    {
        var events = CapturedStreams.Normalized(file);
        Assert.NotEmpty(events);
        Assert.DoesNotContain(events, e => e.Kind == UpstreamEventKind.Malformed);
    }

    [Fact]
    public void Global_stream_yields_every_delta_once_and_ignores_sync_duplicates()
    {
        var lines = CapturedStreams.DataLines("global-event.sse");
        var events = CapturedStreams.Normalized("global-event.sse");
        var rawDeltas = lines.Count(l => l.Contains("\"type\":\"message.part.delta\"", StringComparison.Ordinal));
        Assert.Equal(158, rawDeltas);
        Assert.Equal(rawDeltas, events.Count(e => e.Kind == UpstreamEventKind.PartDelta));

        var syncLines = lines.Count(l => l.Contains("\"type\":\"sync\"", StringComparison.Ordinal));
        Assert.True(syncLines > 0);
        // Durable events arrive twice on /global/event (once as "sync"): the gateway must see each once.
        var messageUpdates = lines.Count(l => l.Contains("\"payload\":{\"id\":", StringComparison.Ordinal) && l.Contains("\"type\":\"message.updated\"", StringComparison.Ordinal));
        Assert.Equal(messageUpdates, events.Count(e => e.Kind == UpstreamEventKind.MessageUpdated));
        Assert.Equal(1, events.Count(e => e.Kind == UpstreamEventKind.ServerConnected));
        Assert.Contains(events, e => e.Kind == UpstreamEventKind.PermissionAsked && e.RequestId!.StartsWith("per_", StringComparison.Ordinal));
        Assert.Contains(events, e => e.Kind == UpstreamEventKind.PermissionReplied && e.Reply == "once");
        Assert.Contains(events, e => e.Kind == UpstreamEventKind.Error);
    }

    [Fact]
    public void Global_and_directory_streams_agree_on_the_session_events()
    {
        static string Key(UpstreamEvent e) => $"{e.Kind}|{e.SessionId}|{e.MessageId}|{e.PartId}|{e.Delta}";
        var global = CapturedStreams.Normalized("global-event.sse").Where(e => e.SessionId is not null).Select(Key).ToList();
        var local = CapturedStreams.Normalized("event.sse").Where(e => e.SessionId is not null).Select(Key).ToList();
        Assert.Equal(local, global);
    }

    [Theory]
    [InlineData("{not json")]
    [InlineData("[]")]
    [InlineData("\"text\"")]
    [InlineData("{}")]
    [InlineData("""{"payload":{"type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_a"}}}""")]
    [InlineData("""{"type":"message.part.updated","properties":{"part":"nope"}}""")]
    [InlineData("""{"type":"message.updated","properties":{"sessionID":"ses_a","info":{"role":"user"}}}""")]
    [InlineData("""{"type":"session.status","properties":{"sessionID":"ses_a"}}""")]
    [InlineData("""{"type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_a","partID":"prt_a","delta":42}}""")]
    public void Bad_lines_are_malformed_not_exceptions(string line)
    {
        var e = OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes(line));
        Assert.Equal(UpstreamEventKind.Malformed, e.Kind);
        Assert.False(string.IsNullOrEmpty(e.Problem));
    }

    [Theory]
    [InlineData("""{"type":"plugin.added","properties":{"id":"x"}}""")]
    [InlineData("""{"type":"session.diff","properties":{"sessionID":"ses_a","diff":[]}}""")]
    [InlineData("""{"type":"lsp.updated","properties":{}}""")]
    [InlineData("""{"payload":{"type":"sync","syncEvent":{"type":"message.updated.1"}}}""")]
    [InlineData("""{"type":"some.future.event","properties":{"sessionID":"ses_a"}}""")]
    [InlineData("""{"type":"session.error","properties":{"error":{"name":"ProviderAuthError"}}}""")]
    public void Unknown_and_irrelevant_events_are_ignored(string line)
    {
        Assert.Equal(UpstreamEventKind.Ignored, OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes(line)).Kind);
    }

    [Fact]
    public void Both_delta_shapes_are_understood()
    {
        var separate = OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes(
            """{"type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_a","partID":"prt_a","field":"text","delta":"t1 "}}"""));
        Assert.Equal((UpstreamEventKind.PartDelta, "ses_a", "msg_a", "prt_a", "text", "t1 "),
            (separate.Kind, separate.SessionId, separate.MessageId, separate.PartId, separate.Field, separate.Delta));

        var embedded = OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes(
            """{"type":"message.part.updated","properties":{"part":{"id":"prt_a","messageID":"msg_a","sessionID":"ses_a","type":"text","text":"t1 t2 "},"delta":"t2 "}}"""));
        Assert.Equal((UpstreamEventKind.PartUpdated, "ses_a", "prt_a", "t2 "), (embedded.Kind, embedded.SessionId, embedded.PartId, embedded.Delta));
    }

    [Fact]
    public void Session_idle_becomes_an_idle_status()
    {
        var e = OpencodeEventNormalizer.Normalize(Encoding.UTF8.GetBytes("""{"type":"session.idle","properties":{"sessionID":"ses_a"}}"""));
        Assert.Equal(UpstreamEventKind.Status, e.Kind);
        Assert.Equal("idle", e.Payload.GetProperty("type").GetString());
    }
}
