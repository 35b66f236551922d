using OpencodeGateway.Contracts;

namespace OpencodeGateway.Sessions;

/// <summary>
/// Tells every connection of the users who may see a session that it was created, changed or archived (the hub
/// implements it with sends through the backplane, so users on every node hear it).
/// </summary>
internal interface ISessionListNotifier
{
    /// <summary>Never throws: the change is already stored; a notification that cannot be sent is logged.</summary>
    Task NotifyAsync(SessionListChange change);
}
