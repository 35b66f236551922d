using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Fanout;

namespace OpencodeGateway.Hubs;

/// <summary>The fan-out's delivery through the session hub's groups.</summary>
internal sealed class SessionHubBroadcaster(IHubContext<SessionHub, ISessionClient> hub) : ISessionBroadcaster
{
    // The gateway's lifetime managers only enqueue: the returned tasks are complete.
    public void SendEvent(string group, SessionEvent evt) => _ = hub.Clients.Group(group).SessionEvent(evt);

    public void SendSnapshot(string group, SessionSnapshot snapshot) => _ = hub.Clients.Group(group).SessionSnapshot(snapshot);
}
