using OpencodeGateway.Contracts;
using OpencodeGateway.Delivery;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.Sequencing;

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

        if (evt is { Type: SessionEventTypes.PartDelta or SessionEventTypes.PartUpdated, Handle: { } field, Offset: { } offset, Delta: { } delta })
        {
            // A text delta, or a tool part's update that only extended one streamed field.
            groups.SendLocalGroup(session.Group, nameof(ISessionClient.D), [session.HandleOf(evt.Epoch), evt.Seq, field, offset, delta]);
        }
        else
        {
            groups.SendLocalGroup(session.Group, nameof(ISessionClient.SessionEvent), [CompactFormOf(evt)]);
        }
    }

    /// <summary>
    /// A tool part's update without the streamed fields whose value the client holds already (<see cref="SessionEvent.Copies"/>):
    /// the completed part repeats the streamed output, which would cost a second copy.
    /// </summary>
    private static SessionEvent CompactFormOf(SessionEvent evt) =>
        evt is { Type: SessionEventTypes.PartUpdated, Part: { } part, Copies: { Count: > 0 } copies }
            ? evt with { Part = PartFields.Without(part, [.. copies.Keys]) }
            : evt;

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
