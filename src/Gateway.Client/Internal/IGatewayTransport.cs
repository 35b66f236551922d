using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client.Internal;

/// <summary>
/// What <see cref="GatewayClient"/> needs of a hub connection. The SignalR one is <see cref="SignalRTransport"/>; tests
/// drive the client's reconnect and rejoin logic through a fake one, without a server.
/// </summary>
internal interface IGatewayTransport : IAsyncDisposable
{
    /// <summary>Connects; throws when the connection could not be made.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    Task StopAsync(CancellationToken cancellationToken);

    /// <summary>Calls a hub method; throws what the server failed it with.</summary>
    Task<object?> InvokeAsync(string method, Type resultType, object?[] args, CancellationToken cancellationToken);
}

/// <summary>What a transport reports, in the order the server sent it (one at a time per connection).</summary>
internal interface IGatewayTransportEvents
{
    void OnSessionEvent(SessionEvent evt);

    void OnSessionSnapshot(SessionSnapshot snapshot);

    void OnDelta(CompactDelta delta);

    void OnSessionListChanged(SessionListChange change);

    /// <summary>The connection dropped and automatic reconnection began.</summary>
    void OnReconnecting(Exception? error);

    /// <summary>A new connection after a drop: it has joined nothing yet.</summary>
    void OnReconnected();

    /// <summary>The connection closed and does not come back by itself (stopped, or closed without reconnect).</summary>
    void OnClosed(Exception? error);
}
