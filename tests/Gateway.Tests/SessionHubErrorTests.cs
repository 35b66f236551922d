using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Testing;

namespace OpencodeGateway.Tests;

/// <summary>Bad calls get a clear coded error and leave the connection usable.</summary>
public class SessionHubErrorTests
{
    private static async Task<string> ErrorOf(GatewayHubClient connection, string method, params object?[] args)
    {
        var e = await Assert.ThrowsAsync<HubException>(() => connection.InvokeAsync(method, args));
        return e.Message;
    }

    [Fact]
    public async Task Bad_input_is_refused_with_a_code_and_the_connection_keeps_working()
    {
        await using var fake = await FakeOpencode.StartAsync();
        fake.AddSession("ses_known");
        await using var gateway = await GatewayHost.StartAsync(fake.BaseUrl);
        await using var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.AsAdmin());

        Assert.EndsWith("HubException: session_not_found: Session 'ses_unknown' was not found.",
            await ErrorOf(connection, "Join", new { sessionId = "ses_unknown" }));
        Assert.Contains("HubException: bad_request: sessionId must be", await ErrorOf(connection, "Join", new { sessionId = "../../etc" }));
        Assert.Contains("HubException: bad_request: sessionId must be", await ErrorOf(connection, "Join", new { sessionId = "" }));
        Assert.Contains("HubException: bad_request: The argument is required.", await ErrorOf(connection, "Join", [null]));
        Assert.Contains("Failed to invoke 'Join'", await ErrorOf(connection, "Join", 42));
        Assert.Contains("Failed to invoke 'Join'", await ErrorOf(connection, "Join", "a", "b"));
        Assert.Contains("HubException: bad_request: A prompt needs text", await ErrorOf(connection, "Prompt", new { sessionId = "ses_known" }));
        Assert.Contains("HubException: bad_request: parts[0].type: must be 'text' or 'file'.",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new[] { new { type = "image", text = "x" } } }));
        Assert.Contains("HubException: bad_request: parts[0].mime: must be a media type",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new[] { new { type = "file", url = "data:text/plain;base64,eA==" } } }));
        Assert.Contains("HubException: bad_request: parts[1].url: must be a base64 data URL",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new object[] { new { type = "text", text = "see" },
                new { type = "file", mime = "image/png", url = "https://example.com/a.png" } } }));
        Assert.Contains("HubException: bad_request: parts[0].url: must be a base64 data URL",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new[] { new { type = "file", mime = "text/plain", url = "/etc/passwd" } } }));
        Assert.Contains("HubException: bad_request: parts[0].url: its data is not valid base64.",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new[] { new { type = "file", mime = "text/plain", url = "data:text/plain;base64,@@@" } } }));
        Assert.Contains("HubException: bad_request: parts[0].filename: must be a file name",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new[] { new { type = "file", mime = "text/plain",
                url = "data:text/plain;base64,eA==", filename = "../x" } } }));
        Assert.Contains("HubException: payload_too_large: parts[0].url: the attachment is larger than 5242880 bytes (Gateway:Prompts:MaxAttachmentBytes).",
            await ErrorOf(connection, "Prompt", new { sessionId = "ses_known", parts = new[] { new { type = "file", mime = "application/octet-stream",
                url = "data:application/octet-stream;base64," + Convert.ToBase64String(new byte[5 * 1024 * 1024 + 1]) } } }));
        Assert.Empty(fake.Prompts);
        Assert.Contains("HubException: bad_request: reply must be",
            await ErrorOf(connection, "ReplyPermission", new { sessionId = "ses_known", requestId = "per_1", reply = "maybe" }));
        Assert.Contains("HubException: bad_request: requestId must be",
            await ErrorOf(connection, "ReplyPermission", new { sessionId = "ses_known", requestId = "x", reply = "once" }));
        Assert.Contains("HubException: permission_not_found:",
            await ErrorOf(connection, "ReplyPermission", new { sessionId = "ses_known", requestId = "per_1", reply = "once" }));
        Assert.Contains("Method does not exist", await ErrorOf(connection, "NoSuchMethod"));

        var join = await connection.JoinAsync(new JoinRequest("ses_known"));
        Assert.False(join.GetProperty("recovered").GetBoolean());
        Assert.False(connection.IsClosed);
    }

    [Fact]
    public async Task An_unreachable_upstream_answers_upstream_unavailable_quickly()
    {
        var port = FreePorts.Take(); // nothing listens there

        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = new Uri($"http://127.0.0.1:{port}"), WaitUntilReady = false,
            // Far longer than the test may take: "quickly" means refused at once, not timed out.
            Settings = { ["Gateway:Upstreams:0:RequestTimeout"] = "00:01:00" },
        });
        await using var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.AsAdmin());
        Assert.Contains("HubException: upstream_unavailable: Upstream 'local' is unreachable:", await ErrorOf(connection, "Join", new { sessionId = "ses_x" }));
        Assert.Contains("HubException: upstream_unavailable: Upstream 'local' is unreachable:", await ErrorOf(connection, "CreateSession", new { title = "t" }));
    }

    [Fact]
    public async Task An_upstream_that_accepts_but_never_answers_times_out_as_unavailable()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(); // accepts connections into the backlog, never answers
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = new Uri($"http://127.0.0.1:{port}"), WaitUntilReady = false,
            Settings = { ["Gateway:Upstreams:0:RequestTimeout"] = "00:00:01" },
        });
        await using var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.AsAdmin());
        Assert.Contains("HubException: upstream_unavailable: Upstream 'local' did not answer within 1 s.",
            await ErrorOf(connection, "Join", new { sessionId = "ses_x" }));
    }

    [Fact]
    public async Task With_several_upstreams_a_session_is_not_found_only_when_every_upstream_says_so()
    {
        var deadPort = FreePorts.Take();
        await using var fake = await FakeOpencode.StartAsync();
        fake.AddSession("ses_known");
        await using var gateway = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Upstream = fake.BaseUrl, WaitUntilReady = false,
            Settings = { ["Gateway:Upstreams:1:Id"] = "down", ["Gateway:Upstreams:1:BaseUrl"] = $"http://127.0.0.1:{deadPort}" },
        });
        await using var connection = await GatewayHubClient.ConnectAsync(gateway.HubUrl, GatewayHost.AsAdmin());

        // The unreachable upstream may hold it: saying "not found" would be a lie.
        Assert.Contains("HubException: upstream_unavailable:", await ErrorOf(connection, "Join", new { sessionId = "ses_elsewhere" }));
        var join = await connection.JoinAsync(new JoinRequest("ses_known"));
        Assert.Equal("local", join.GetProperty("upstream").GetString());
    }
}
