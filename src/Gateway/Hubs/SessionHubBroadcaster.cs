using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Fanout;
using OpencodeGateway.Hubs.Internal;

namespace OpencodeGateway.Hubs;

/// <summary>
/// The fan-out's delivery through the session hub's groups: a session's full connections are in its group, its compact
/// connections in its compact group (<see cref="CompactSessions"/>), so each form is serialised once per group send.
/// </summary>
internal sealed class SessionHubBroadcaster(IHubContext<SessionHub, ISessionClient> hub, CompactSessions compact) : ISessionBroadcaster
{
    // The gateway's lifetime managers only enqueue: the returned tasks are complete.
    public void SendEvent(string group, SessionEvent evt)
    {
        _ = hub.Clients.Group(group).SessionEvent(evt);
        if (compact.Find(group) is not { } session)
        {
            return;
        }

        if (evt is { Type: SessionEventTypes.PartDelta, Handle: { } field, Offset: { } offset, Delta: { } delta })
        {
            _ = hub.Clients.Group(session.Group).D(session.HandleOf(evt.Epoch), evt.Seq, field, offset, delta);
        }
        else
        {
            _ = hub.Clients.Group(session.Group).SessionEvent(evt);
        }
    }

    public void SendSnapshot(string group, SessionSnapshot snapshot)
    {
        _ = hub.Clients.Group(group).SessionSnapshot(snapshot);
        if (compact.Find(group) is { } session)
        {
            _ = hub.Clients.Group(session.Group).SessionSnapshot(snapshot with { SessionHandle = session.HandleOf(snapshot.Epoch) });
        }
    }
}
