using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client.Internal;

/// <summary>The official SignalR client's <see cref="HubConnection"/> as the client's transport.</summary>
internal sealed class SignalRTransport : IGatewayTransport
{
    private readonly HubConnection _connection;

    public SignalRTransport(HubConnection connection, IGatewayTransportEvents events)
    {
        _connection = connection;
        connection.On<SessionEvent>(nameof(ISessionClient.SessionEvent), events.OnSessionEvent);
        connection.On<SessionSnapshot>(nameof(ISessionClient.SessionSnapshot), events.OnSessionSnapshot);
        connection.On<int, long, int, int, string>(nameof(ISessionClient.D), (s, seq, h, offset, delta) =>
            events.OnDelta(new CompactDelta(s, seq, h, offset, delta)));
        connection.On<SessionListChange>(nameof(ISessionClient.SessionListChanged), events.OnSessionListChanged);
        connection.Reconnecting += error =>
        {
            events.OnReconnecting(error);
            return Task.CompletedTask;
        };
        connection.Reconnected += _ =>
        {
            events.OnReconnected();
            return Task.CompletedTask;
        };
        connection.Closed += error =>
        {
            events.OnClosed(error);
            return Task.CompletedTask;
        };
    }

    public Task StartAsync(CancellationToken cancellationToken) => _connection.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => _connection.StopAsync(cancellationToken);

    public Task<object?> InvokeAsync(string method, Type resultType, object?[] args, CancellationToken cancellationToken) =>
        _connection.InvokeCoreAsync(method, resultType, args, cancellationToken);

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
