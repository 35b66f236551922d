using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.Sessions;

namespace OpencodeGateway.Hubs;

/// <summary>
/// Sends a session's list change to whoever may see it: its owner (a user send), the members of its workspace and the
/// admins (groups every connection joins on connect, <see cref="SessionHub.OnConnectedAsync"/>). Through the hub's
/// lifetime manager, so in a cluster the backplane carries it to every node.
/// </summary>
internal sealed class SessionListBroadcaster(IHubContext<SessionHub, ISessionClient> hub, ILogger<SessionListBroadcaster> logger)
    : ISessionListNotifier
{
    public const string AdminsGroup = "admins";

    public static string WorkspaceGroup(string workspace) => "workspace:" + workspace;

    public async Task NotifyAsync(SessionListChange change)
    {
        var session = change.Session;
        var sends = new List<Task> { hub.Clients.Group(AdminsGroup).SessionListChanged(change) };
        if (session.OwnerId is { } owner)
        {
            sends.Add(hub.Clients.User(owner).SessionListChanged(change));
        }

        if (session.Workspace is { } workspace)
        {
            sends.Add(hub.Clients.Group(WorkspaceGroup(workspace)).SessionListChanged(change));
        }

        try
        {
            await Task.WhenAll(sends);
        }
        catch (Exception e)
        {
            // The change is stored; lists catch up on their next ListSessions (clients list again after a reconnect).
            HubsLog.SessionListNotifyFailed(logger, session.SessionId, change.Kind, e);
        }
    }
}
