using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace OpencodeGateway.Testing;

/// <summary>
/// A TCP proxy on a loopback port in front of one endpoint, which can partition its clients from it: while cut, no byte
/// passes either way and new connections are accepted but go nowhere (packets dropped, as by a broken network path,
/// not refused); healing closes what the cut left hanging, so clients reconnect through the proxy as it forwards again.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly ConcurrentDictionary<Socket, byte> _sockets = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;
    private volatile bool _cut;

    private TcpProxy(IPEndPoint target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>Where clients connect instead of the endpoint: <c>127.0.0.1:port</c>.</summary>
    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public static TcpProxy Start(string hostAndPort)
    {
        var endpoint = IPEndPoint.Parse(hostAndPort);
        return new TcpProxy(endpoint);
    }

    /// <summary>From now on nothing passes, on open connections and new ones alike.</summary>
    public void Cut() => _cut = true;

    /// <summary>Forwards again; every connection open now is closed (those of the cut went nowhere), so clients reconnect.</summary>
    public void Heal()
    {
        _cut = false;
        foreach (var socket in _sockets.Keys)
        {
            Close(socket);
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stopping.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _sockets[client] = 0;
            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        if (_cut)
        {
            return; // held open, silent, until healed
        }

        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _sockets[server] = 0;
        try
        {
            await server.ConnectAsync(_target, _stopping.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException)
        {
            Close(client);
            Close(server);
            return;
        }

        await Task.WhenAny(PumpAsync(client, server), PumpAsync(server, client));
        Close(client);
        Close(server);
    }

    /// <summary>Copies one direction until either side ends; while cut, what arrives is dropped.</summary>
    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None, _stopping.Token)) > 0)
            {
                if (!_cut)
                {
                    await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stopping.Token);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
            // closed by the other direction, by Heal or by Dispose
        }
    }

    private void Close(Socket socket)
    {
        if (_sockets.TryRemove(socket, out _))
        {
            socket.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        _listener.Stop();
        foreach (var socket in _sockets.Keys)
        {
            Close(socket);
        }

        await _accepting;
        _stopping.Dispose();
    }
}
