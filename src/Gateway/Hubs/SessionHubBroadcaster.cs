using OpencodeGateway.Contracts;
using OpencodeGateway.Fanout;
using OpencodeGateway.SignalR;

namespace OpencodeGateway.Hubs;

/// <summary>The fan-out's delivery to this node's members of the session hub's groups (never through a backplane).</summary>
internal sealed class SessionHubBroadcaster(ILocalGroupManager<SessionHub> groups) : ISessionBroadcaster
{
    public void SendEvent(string group, SessionEvent evt) => groups.SendLocalGroup(group, nameof(ISessionClient.SessionEvent), [evt]);

    public void SendSnapshot(string group, SessionSnapshot snapshot) =>
        groups.SendLocalGroup(group, nameof(ISessionClient.SessionSnapshot), [snapshot]);
}
