using Microsoft.AspNetCore.SignalR;

namespace OpencodeGateway.Delivery;

/// <summary>
/// Groups of this node's connections only: membership and sends never leave the node (no backplane). The gateway
/// delivers each session's events this way: every node's feed delivers what it repaired from the shared history to its
/// own members, so nothing is sent twice across nodes.
/// </summary>
public interface ILocalGroupManager<THub> where THub : Hub
{
    void AddToLocalGroup(string connectionId, string groupName);

    void RemoveFromLocalGroup(string connectionId, string groupName);

    /// <summary>Queues the invocation for every member on this node; serialised once, never waits on a client.</summary>
    void SendLocalGroup(string groupName, string methodName, object?[] args);
}
