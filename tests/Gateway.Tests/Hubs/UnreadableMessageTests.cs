using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests.Hubs;

/// <summary>
/// A hub message nested deeper than SignalR's JSON protocol reads (64 levels) gets what an oversized one gets: it cannot
/// be read, so it cannot be answered; SignalR closes that connection alone, saying why, and the gateway logs it once.
/// </summary>
public sealed class UnreadableMessageTests
{
    [Fact]
    public async Task A_message_nested_too_deep_closes_only_its_connection_with_the_reason_and_is_logged_once()
    {
        using var logs = new FakeLoggerProvider();
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions { Configure = b => b.Logging.AddProvider(logs) });
        await using var bystander = await gateway.ConnectHubAsync("bob");
        using var socket = new ClientWebSocket();
        var url = new UriBuilder(gateway.HubUrl) { Scheme = "ws", Query = $"access_token={GatewayHost.Token("alice")}" }.Uri;
        await socket.ConnectAsync(url, CancellationToken.None);
        await SendAsync(socket, "{\"protocol\":\"json\",\"version\":1}");
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 70)) + "1" + new string('}', 70);
        await SendAsync(socket, $"{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Prompt\",\"arguments\":[{deep}]}}");

        var received = new StringBuilder();
        var buffer = new byte[4096];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while ((await socket.ReceiveAsync(buffer, deadline.Token)) is { MessageType: not WebSocketMessageType.Close } result)
        {
            received.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
        }

        // The close message (type 7) says why: SignalR's reason, with detailed errors on.
        Assert.Contains("\"type\":7", received.ToString(), StringComparison.Ordinal);
        Assert.Contains("InvalidDataException: Error reading JSON.", received.ToString(), StringComparison.Ordinal);
        await bystander.ListSessionsAsync();
        await Eventually.HoldsAsync(() => logs.Collector.GetSnapshot().Any(r => r.Message.Contains("nested deeper", StringComparison.Ordinal)),
            "the deep message logged", TimeSpan.FromSeconds(10));
        var line = Assert.Single(logs.Collector.GetSnapshot(), r => r.Message.Contains("nested deeper", StringComparison.Ordinal));
        Assert.Contains("of user alice", line.Message, StringComparison.Ordinal);
        Assert.Equal(LogLevel.Warning, line.Level);
    }

    private static Task SendAsync(ClientWebSocket socket, string message) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(message + "\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
}
