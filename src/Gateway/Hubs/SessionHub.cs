using System.Diagnostics;
using System.Text.Json;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Delivery;
using OpencodeGateway.Hubs.Internal;
using OpencodeGateway.Limits;
using OpencodeGateway.Sessions;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Hubs;

/// <summary>
/// The session hub (<c>/hubs/session</c>). Errors reach clients as <c>HubException</c>s "<c>{code}: {message}</c>"
/// (<see cref="GatewayErrorCodes"/>); a failed call leaves the connection as it was.
/// Only authenticated callers connect. Every method that names a session first asks the <see cref="SessionCatalog"/>
/// whether the caller may see it; <see cref="Join"/> is the only way into a session's group, so a connection
/// receives events only of sessions it was allowed to join.
/// </summary>
[Authorize]
internal sealed class SessionHub(SessionService sessions, SessionCatalog catalog, SessionFeeds feeds,
    ILocalGroupManager<SessionHub> sessionGroups, CompactSessions compactSessions, UserLimits limits, GatewayMetrics metrics,
    ILogger<SessionHub> logger)
    : Hub<ISessionClient>
{
    /// <summary>Starts receiving a session's events; returns either what was missed since <c>since</c> or a snapshot.</summary>
    public async Task<JoinResult> Join(JoinRequest request)
    {
        var started = Stopwatch.GetTimestamp();
        var outcome = "error";
        try
        {
            var result = await JoinCoreAsync(request);
            outcome = result.Recovered ? "recovered" : "snapshot";
            return result;
        }
        finally
        {
            metrics.Joined(Stopwatch.GetElapsedTime(started), outcome);
        }
    }

    private async Task<JoinResult> JoinCoreAsync(JoinRequest request)
    {
        ArgumentRequired(request);
        using var activity = GatewayTelemetry.StartActivity("gateway.join", request.Upstream, request.SessionId);
        var (client, record) = await catalog.AuthorizeAsync(Caller, request.SessionId, request.Upstream, Context.ConnectionAborted);
        var key = new SessionKey(client.UpstreamId, request.SessionId);
        var added = !Joined.ContainsKey(key);
        var compact = Joined.Compact;
        if (added)
        {
            limits.CheckSessionsPerConnection(Caller, Joined.Count);
            Joined[key] = await feeds.AcquireAsync(key, Context.ConnectionAborted);
            if (compact)
            {
                compactSessions.Add(key.GroupName);
            }
        }

        try
        {
            // Receive the session's events before reading its state: every later event reaches us, earlier ones are
            // in the result. The group is this node's: its feed delivers the session's events to it (compact and full
            // connections are in groups of their own, so each form is serialised once per send).
            var compactSession = compact ? compactSessions.Find(key.GroupName)! : null;
            sessionGroups.AddToLocalGroup(Context.ConnectionId, compactSession?.Group ?? key.GroupName);
            var result = await sessions.JoinAsync(key, request.Since, record?.ToContract(), Context.ConnectionAborted);
            if (compactSession is null)
            {
                return result;
            }

            var handle = compactSession.HandleOf(result.Epoch);
            return result with { SessionHandle = handle, Snapshot = result.Snapshot is { } snapshot ? snapshot with { SessionHandle = handle } : null };
        }
        catch when (added)
        {
            await LeaveCoreAsync(key);
            throw;
        }
    }

    /// <summary>Stops receiving a session's events.</summary>
    public async Task Leave(string sessionId)
    {
        SessionService.ValidateSessionId(sessionId);
        foreach (var key in Joined.Keys.Where(k => k.SessionId == sessionId).ToList())
        {
            await LeaveCoreAsync(key);
        }
    }

    /// <summary>Creates a session on an upstream and its record (owner: the caller); returns opencode's session info.</summary>
    public async Task<JsonElement> CreateSession(CreateSessionRequest? request)
    {
        var (_, info) = await catalog.CreateAsync(Caller, request ?? new CreateSessionRequest(), Context.ConnectionAborted);
        return info;
    }

    /// <summary>The caller's sessions (owned or in one of their workspaces), newest first, one page at a time.</summary>
    public Task<SessionList> ListSessions(ListSessionsRequest? request) =>
        catalog.ListAsync(Caller, request ?? new ListSessionsRequest(), Context.ConnectionAborted);

    /// <summary>Changes a session's title, tags (replaced) and metadata (JSON Merge Patch); returns the record.</summary>
    public async Task<SessionMetadata> UpdateMetadata(UpdateSessionRequest request)
    {
        ArgumentRequired(request);
        var patch = new SessionPatch { Title = request.Title, Tags = request.Tags, Metadata = request.Metadata };
        var updated = await catalog.UpdateAsync(Caller, request.SessionId, patch, Context.ConnectionAborted);
        return updated.ToContract();
    }

    /// <summary>Sends a prompt. While the session is busy opencode queues it (see <see cref="PromptResult.Queued"/>).</summary>
    public async Task<PromptResult> Prompt(PromptRequest request)
    {
        ArgumentRequired(request);
        using var activity = GatewayTelemetry.StartActivity("gateway.prompt", sessionId: request.SessionId);
        var (client, _) = await catalog.AuthorizeAsync(Caller, request.SessionId, upstream: null, Context.ConnectionAborted);
        return await sessions.PromptAsync(Caller, client, request, Context.ConnectionAborted);
    }

    /// <summary>Stops the session's current answer (queued prompts are dropped by opencode).</summary>
    public async Task Abort(string sessionId)
    {
        var (client, _) = await catalog.AuthorizeAsync(Caller, sessionId, upstream: null, Context.ConnectionAborted);
        await client.GetSessionAsync(sessionId, Context.ConnectionAborted); // opencode answers true for unknown ids
        await client.AbortAsync(sessionId, Context.ConnectionAborted);
    }

    /// <summary>
    /// Answers a permission request of the session or of one of its subagents' sessions: <c>once</c>, <c>always</c> or
    /// <c>reject</c>.
    /// </summary>
    public async Task ReplyPermission(PermissionReplyRequest request)
    {
        ArgumentRequired(request);
        var (client, _) = await catalog.AuthorizeAsync(Caller, request.SessionId, upstream: null, Context.ConnectionAborted);
        await sessions.ReplyPermissionAsync(client, request, Context.ConnectionAborted);
    }

    /// <summary>Answers a question of the session or of one of its subagents' sessions: one array of answers per question.</summary>
    public async Task ReplyQuestion(QuestionReplyRequest request)
    {
        ArgumentRequired(request);
        var (client, _) = await catalog.AuthorizeAsync(Caller, request.SessionId, upstream: null, Context.ConnectionAborted);
        await sessions.ReplyQuestionAsync(client, request, Context.ConnectionAborted);
    }

    /// <summary>Dismisses a question of the session or of one of its subagents' sessions.</summary>
    public async Task RejectQuestion(QuestionRejectRequest request)
    {
        ArgumentRequired(request);
        var (client, _) = await catalog.AuthorizeAsync(Caller, request.SessionId, upstream: null, Context.ConnectionAborted);
        await sessions.RejectQuestionAsync(client, request, Context.ConnectionAborted);
    }

    /// <summary>The messages before a snapshot's (or a page's) <c>earlier</c> cursor, oldest first.</summary>
    public async Task<MessagePage> LoadEarlier(LoadEarlierRequest request)
    {
        ArgumentRequired(request);
        var (client, _) = await catalog.AuthorizeAsync(Caller, request.SessionId, upstream: null, Context.ConnectionAborted);
        return await sessions.LoadEarlierAsync(client, request.SessionId, request.Before, request.Limit, Context.ConnectionAborted);
    }

    /// <summary>
    /// Refuses a connection whose <c>?events=</c> names no form, before it joins anything; joins the groups of the
    /// caller's session list changes: its workspaces' and, for admins, the admins'. (Changes of the caller's own sessions
    /// are user sends, which need no group.)
    /// </summary>
    public override async Task OnConnectedAsync()
    {
        _ = EventForm;
        var caller = Caller;
        try
        {
            foreach (var workspace in caller.Workspaces)
            {
                await Groups.AddToGroupAsync(Context.ConnectionId, SessionListBroadcaster.WorkspaceGroup(workspace), Context.ConnectionAborted);
            }

            if (caller.IsAdmin)
            {
                await Groups.AddToGroupAsync(Context.ConnectionId, SessionListBroadcaster.AdminsGroup, Context.ConnectionAborted);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The backplane is down: the connection still streams its sessions; its lists refresh on ListSessions.
            HubsLog.ListGroupsUnavailable(logger, Context.ConnectionId, caller.UserId, e);
        }

        await base.OnConnectedAsync();
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        if (exception is InvalidDataException { Message: var reason } && reason.Contains("maximum message size", StringComparison.Ordinal))
        {
            HubsLog.MessageTooLarge(logger, Context.ConnectionId, Context.UserIdentifier, reason);
        }
        else if (exception is InvalidDataException { InnerException: System.Text.Json.JsonException { Message: var deep } }
                 && deep.Contains("maximum configured depth", StringComparison.Ordinal))
        {
            // SignalR's JSON protocol reads 64 levels (System.Text.Json's default): like an oversized message, a deeper
            // one cannot be read, so it cannot be answered, and SignalR closes the connection.
            HubsLog.MessageTooDeep(logger, Context.ConnectionId, Context.UserIdentifier, deep);
        }

        // (a connection that joined nothing has nothing to leave)
        foreach (var key in Context.Features.Get<JoinedSessions>()?.Keys.ToList() ?? [])
        {
            await LeaveCoreAsync(key);
        }

        await base.OnDisconnectedAsync(exception);
    }

    private async Task LeaveCoreAsync(SessionKey key)
    {
        if (Joined.Remove(key, out var feed))
        {
            if (Joined.Compact)
            {
                sessionGroups.RemoveFromLocalGroup(Context.ConnectionId, CompactSessions.GroupOf(key.GroupName));
                compactSessions.Remove(key.GroupName);
            }
            else
            {
                sessionGroups.RemoveFromLocalGroup(Context.ConnectionId, key.GroupName);
            }

            await feed.DisposeAsync();
        }
    }

    // One invocation at a time per connection (HubOptions.MaximumParallelInvocationsPerClient = 1), so no lock. Kept as
    // a connection feature: the feature collection exists anyway, Context.Items would add a dictionary per connection.
    private JoinedSessions Joined => Context.Features.Get<JoinedSessions>() ?? SetJoined();

    private JoinedSessions SetJoined()
    {
        var joined = new JoinedSessions(EventForm == EventForms.Compact);
        Context.Features.Set(joined);
        return joined;
    }

    /// <summary>
    /// The sessions a connection joined, with its hold on each session's feed, and its event form (read from its
    /// request at the first join; the request may be gone when the connection closes).
    /// </summary>
    private sealed class JoinedSessions(bool compact) : Dictionary<SessionKey, IAsyncDisposable>
    {
        public bool Compact { get; } = compact;
    }

    private GatewayUser Caller => GatewayUser.From(Context.User);

    /// <summary>
    /// How this connection receives events (<see cref="EventForms"/>): <c>?events=</c> on the hub URL, compact when
    /// absent.
    /// </summary>
    private string EventForm => Context.GetHttpContext()?.Request.Query[EventForms.QueryParameter] switch
    {
        { Count: 0 } or null => EventForms.Compact,
        [EventForms.Compact] => EventForms.Compact,
        [EventForms.Full] => EventForms.Full,
        _ => throw new HubException($"{GatewayErrorCodes.BadRequest}: '{EventForms.QueryParameter}' on the hub URL must be "
            + $"'{EventForms.Compact}' (the default) or '{EventForms.Full}'."),
    };

    private static void ArgumentRequired(object? argument)
    {
        if (argument is null)
        {
            throw GatewayException.BadRequest("The argument is required.");
        }
    }
}
