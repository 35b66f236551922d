using OpencodeGateway.Contracts;

namespace OpencodeGateway.Delivery;

/// <summary>
/// Delivers a session's events and pushed snapshots to the connections of this node that joined the session's group.
/// Never waits on a client.
/// </summary>
public interface ISessionBroadcaster
{
    void SendEvent(string group, SessionEvent evt);

    void SendSnapshot(string group, SessionSnapshot snapshot);
}
