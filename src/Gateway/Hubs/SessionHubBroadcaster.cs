using OpencodeGateway.Contracts;
using OpencodeGateway.Fanout;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.SignalR;

namespace OpencodeGateway.Hubs;

/// <summary>
/// The fan-out's delivery to this node's members of the session hub's groups (never through a backplane): a session's
/// full connections are in its group, its compact connections in its compact group (<see cref="CompactSessions"/>), so
/// each form is serialised once per group send.
/// </summary>
internal sealed class SessionHubBroadcaster(ILocalGroupManager<SessionHub> groups, CompactSessions compact) : ISessionBroadcaster
{
    public void SendEvent(string group, SessionEvent evt)
    {
        groups.SendLocalGroup(group, nameof(ISessionClient.SessionEvent), [evt]);
        if (compact.Find(group) is not { } session)
        {
            return;
        }

        if (evt is { Type: SessionEventTypes.PartDelta, Handle: { } field, Offset: { } offset, Delta: { } delta })
        {
            groups.SendLocalGroup(session.Group, nameof(ISessionClient.D), [session.HandleOf(evt.Epoch), evt.Seq, field, offset, delta]);
        }
        else
        {
            groups.SendLocalGroup(session.Group, nameof(ISessionClient.SessionEvent), [evt]);
        }
    }

    public void SendSnapshot(string group, SessionSnapshot snapshot)
    {
        groups.SendLocalGroup(group, nameof(ISessionClient.SessionSnapshot), [snapshot]);
        if (compact.Find(group) is { } session)
        {
            groups.SendLocalGroup(session.Group, nameof(ISessionClient.SessionSnapshot),
                [snapshot with { SessionHandle = session.HandleOf(snapshot.Epoch) }]);
        }
    }
}
