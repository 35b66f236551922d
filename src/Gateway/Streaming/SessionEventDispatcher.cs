using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Hubs;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Sessions.Store;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Streaming;

/// <summary>Applies normalised upstream events to live session state and fans them out to the session's group.</summary>
internal sealed class SessionEventDispatcher(
    LiveSessionRegistry registry,
    SnapshotBuilder snapshots,
    UpstreamRegistry upstreams,
    IHubContext<SessionHub, ISessionClient> hub,
    SessionSubscriptions subscriptions,
    GatewayMetrics metrics,
    ISessionStore store,
    ILogger<SessionEventDispatcher> logger)
{
    public void Dispatch(string upstream, UpstreamEvent e)
    {
        var (evt, group) = registry.Use(upstream, e.SessionId!, session =>
        {
            var applied = session.Apply(e);
            // Filter before any fan-out work: nobody on this node watches the session.
            return (applied, session.Watchers > 0 ? session.GroupName : null);
        });

        if (evt is not null && group is not null)
        {
            // The outbox lifetime manager only enqueues: this never waits on a client.
            _ = hub.Clients.Group(group).SessionEvent(evt);
            subscriptions.Publish(group, evt);
            metrics.EventSent();
        }
    }

    /// <summary>The stream came back after a gap: watched sessions get a new epoch and a fresh snapshot.</summary>
    public void OnStreamResumed(string upstream)
    {
        var watched = registry.ResetUpstream(upstream);
        if (watched.Count == 0)
        {
            return;
        }

        Log.Resynchronising(logger, upstream, watched.Count);
        var client = upstreams.Get(upstream);
        foreach (var session in watched)
        {
            _ = PushSnapshotAsync(client, session.SessionId, session.GroupName);
        }
    }

    private async Task PushSnapshotAsync(OpencodeClient client, string sessionId, string group)
    {
        try
        {
            SessionMetadata? metadata = null;
            try
            {
                metadata = (await store.GetAsync(sessionId, CancellationToken.None))?.ToContract();
            }
            catch (System.Data.Common.DbException e)
            {
                Log.ResyncFailed(logger, sessionId, "session store: " + e.Message);
            }

            var snapshot = await snapshots.BuildAsync(client, sessionId, metadata, CancellationToken.None);
            await hub.Clients.Group(group).SessionSnapshot(snapshot);
            subscriptions.Publish(group, snapshot);
        }
        catch (GatewayException e)
        {
            Log.ResyncFailed(logger, sessionId, e.Message);
        }
    }
}
