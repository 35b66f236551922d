using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Testing;
using Xunit.Abstractions;

namespace OpencodeGateway.Tests.Hubs;

/// <summary>A connection that completes the handshake and then sends nothing is closed within the client timeout.</summary>
public sealed class SilentClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_client_that_goes_silent_after_the_handshake_is_closed_within_the_client_timeout()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["Gateway:Hub:KeepAliveInterval"] = "00:00:01", ["Gateway:Hub:ClientTimeoutInterval"] = "00:00:03" },
        });
        using var socket = new ClientWebSocket();
        var url = new UriBuilder(gateway.HubUrl) { Scheme = "ws", Query = $"access_token={GatewayHost.Token("alice")}" }.Uri;
        using var dropped = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.connections.silent_dropped");
        await socket.ConnectAsync(url, CancellationToken.None);
        await socket.SendAsync(Encoding.UTF8.GetBytes("{\"protocol\":\"json\",\"version\":1}\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
        var clock = Stopwatch.StartNew();
        var buffer = new byte[4096];
        var received = new StringBuilder();
        // Read (the handshake's answer, the server's pings) but never send, until the gateway drops the connection.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            while ((await socket.ReceiveAsync(buffer, deadline.Token)) is { MessageType: not WebSocketMessageType.Close } result)
            {
                received.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
            }
        }
        catch (WebSocketException)
        {
            // dropped without a close handshake: what a client whose peer went away sees
        }

        output.WriteLine($"dropped after {clock.Elapsed.TotalSeconds:0.0} s; received: {received.ToString().Replace('\u001e', '|')}");
        Assert.False(deadline.IsCancellationRequested, "the silent connection was not dropped within 60 s");
        // Not before the timeout (3 s), and within the timeout plus the scan's second (and a busy machine's slack).
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(15));
        Assert.Contains("\"type\":6", received.ToString(), StringComparison.Ordinal); // it was pinged meanwhile: alive, not talking
        Assert.Equal(1, dropped.GetMeasurementSnapshot().EvaluateAsCounter());
    }

    [Fact]
    public async Task A_client_that_pings_is_never_dropped_as_silent()
    {
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Settings = { ["Gateway:Hub:KeepAliveInterval"] = "00:00:01", ["Gateway:Hub:ClientTimeoutInterval"] = "00:00:03" },
        });
        using var dropped = new MetricCollector<long>(gateway.Get<IMeterFactory>(), GatewayMetrics.MeterName, "gateway.connections.silent_dropped");
        // The official client pings every second here: its connection lives past several timeouts.
        await using var client = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.As() with { KeepAliveInterval = TimeSpan.FromSeconds(1) });
        await Task.Delay(TimeSpan.FromSeconds(8));
        Assert.False(client.IsClosed);
        Assert.Empty(dropped.GetMeasurementSnapshot());
    }
}
