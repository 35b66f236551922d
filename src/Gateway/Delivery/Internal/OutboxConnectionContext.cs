using System.Security.Claims;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.Logging.Abstractions;

namespace OpencodeGateway.Delivery.Internal;

/// <summary>
/// A stand-in for a real connection, registered with SignalR's Redis lifetime manager: it answers for the connection
/// (id, user, features, protocol) and turns every write into an enqueue on the connection's bounded outbox, so the
/// manager's per-channel handler never waits on a client (it awaits each member's write before the next message).
/// </summary>
/// <remarks>
/// Not a documented extension point: it relies on these members being virtual in Microsoft.AspNetCore.SignalR 10.0
/// (<c>OutboxConnectionContextShapeTests</c> fails when that changes).
/// </remarks>
internal sealed class OutboxConnectionContext : HubConnectionContext
{
    private readonly HubConnectionContext _connection;
    private readonly ConnectionOutbox _outbox;

    public OutboxConnectionContext(HubConnectionContext connection, ConnectionOutbox outbox)
        : base(new DefaultConnectionContext(connection.ConnectionId), new HubConnectionContextOptions(), NullLoggerFactory.Instance)
    {
        _connection = connection;
        _outbox = outbox;
        UserIdentifier = connection.UserIdentifier;
    }

    public override string ConnectionId => _connection.ConnectionId;
    public override CancellationToken ConnectionAborted => _connection.ConnectionAborted;
    public override ClaimsPrincipal User => _connection.User;
    public override IFeatureCollection Features => _connection.Features;
    public override IDictionary<object, object?> Items => _connection.Items;
    public override IHubProtocol Protocol => _connection.Protocol;

    public override ValueTask WriteAsync(HubMessage message, CancellationToken cancellationToken = default)
    {
        _outbox.Enqueue(new SerializedHubMessage(message));
        return ValueTask.CompletedTask;
    }

    public override ValueTask WriteAsync(SerializedHubMessage message, CancellationToken cancellationToken = default)
    {
        _outbox.Enqueue(message);
        return ValueTask.CompletedTask;
    }

    public override void Abort() => _connection.Abort();
}
