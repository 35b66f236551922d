using System.Text.Json;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Store;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Sessions.Internal;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Sessions;

/// <summary>A change of a session record; null members are left as they are.</summary>
internal sealed record SessionPatch
{
    public string? Title { get; init; }
    public IReadOnlyList<string?>? Tags { get; init; }
    /// <summary>A JSON Merge Patch of the metadata object.</summary>
    public JsonElement? Metadata { get; init; }
    /// <summary>Replace the metadata with <c>{}</c> (HTTP <c>"metadata": null</c>).</summary>
    public bool ClearMetadata { get; init; }
}

/// <summary>
/// The gateway's sessions as its callers see them: records in the store joined with opencode, every operation
/// authorised for a <see cref="GatewayUser"/>. Used by the hub and by <c>/api/sessions</c>. A session the caller may
/// not see is answered exactly like one that does not exist (<c>session_not_found</c>).
/// </summary>
internal sealed class SessionCatalog(
    ISessionStore store,
    SessionService sessions,
    SessionTree tree,
    UpstreamRegistry upstreams,
    ISessionListNotifier lists,
    TimeProvider time,
    ILogger<SessionCatalog> logger)
{
    /// <summary>
    /// Creates the session on an upstream, then its record (owner = the caller). When the upstream fails nothing is
    /// written; when the record cannot be written the upstream session is deleted again.
    /// </summary>
    public async Task<(SessionRecord Record, JsonElement Info)> CreateAsync(GatewayUser user, CreateSessionRequest request, CancellationToken ct)
    {
        SessionRules.ValidateTitle(request.Title);
        SessionRules.ValidateWorkspace(request.Workspace);
        if (request.Workspace is not null && !user.IsAdmin && !user.IsMemberOf(request.Workspace))
        {
            throw new GatewayException(GatewayErrorCodes.Forbidden, $"workspace: you are not a member of workspace '{request.Workspace}'.")
            {
                Errors = new Dictionary<string, string[]> { ["workspace"] = ["you are not a member of this workspace."] },
            };
        }

        var tags = SessionRules.NormalizeTags(request.Tags);
        var metadata = SessionRules.InitialMetadata(request.Metadata);
        var client = string.IsNullOrEmpty(request.Upstream) ? upstreams.Default : upstreams.Get(request.Upstream);

        var info = await sessions.CreateAsync(client.UpstreamId, request.Title, ct);
        var sessionId = info.ValueKind == JsonValueKind.Object && info.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String
            ? id.GetString()!
            : throw new GatewayException(GatewayErrorCodes.UpstreamError, $"Upstream '{client.UpstreamId}' created a session without an id.");

        var record = NewRecord(sessionId, client.UpstreamId, user.UserId, request.Workspace, request.Title ?? StringOf(info, "title"), tags, metadata);

        try
        {
            await store.InsertAsync(record, ct);
        }
        catch (Exception e)
        {
            CatalogLog.CreateRolledBack(logger, sessionId, e);
            try
            {
                await client.DeleteSessionAsync(sessionId, CancellationToken.None);
            }
            catch (Exception deleteFailure)
            {
                CatalogLog.CreateOrphaned(logger, sessionId, client.UpstreamId, deleteFailure);
            }

            if (e is SessionExistsException)
            {
                throw new GatewayException(GatewayErrorCodes.Conflict, $"Session '{sessionId}' already has a record.", e);
            }

            throw;
        }

        await lists.NotifyAsync(new SessionListChange(SessionListChangeKinds.Created, record.ToContract()));
        return (record, info);
    }

    /// <summary>The record of a session the caller may see; <c>session_not_found</c> otherwise.</summary>
    public async Task<SessionRecord> GetVisibleAsync(GatewayUser user, string sessionId, CancellationToken ct)
    {
        SessionService.ValidateSessionId(sessionId);
        var record = await store.GetAsync(sessionId, ct) ?? await RecordDescendantAsync(user, sessionId, upstream: null, ct);
        if (record is null || !user.CanSee(record.OwnerId, record.Workspace))
        {
            throw GatewayException.SessionNotFound(sessionId);
        }

        return record;
    }

    /// <summary>
    /// Authorises an operation on a live session (join, prompt, abort, permission reply) and finds its upstream.
    /// Sessions without a record exist only for admins.
    /// </summary>
    public async Task<(OpencodeClient Client, SessionRecord? Record)> AuthorizeAsync(GatewayUser user, string sessionId,
        string? upstream, CancellationToken ct)
    {
        SessionService.ValidateSessionId(sessionId);
        var record = await store.GetAsync(sessionId, ct);
        if (record is null)
        {
            if (user.IsAdmin)
            {
                return (await sessions.ResolveAsync(sessionId, upstream, ct), null);
            }

            record = await RecordDescendantAsync(user, sessionId, upstream, ct) ?? throw GatewayException.SessionNotFound(sessionId);
        }

        if (!user.CanSee(record.OwnerId, record.Workspace)
            || (!string.IsNullOrEmpty(upstream) && !string.Equals(upstream, record.Upstream, StringComparison.Ordinal)))
        {
            throw GatewayException.SessionNotFound(sessionId);
        }

        return (await sessions.ResolveAsync(sessionId, record.Upstream, ct), record);
    }

    /// <summary>
    /// A subagent's session the gateway has no record of (opencode's <c>task</c> tool created it): when its nearest
    /// recorded ancestor is one the caller may see, it gets a record with that ancestor's owner and workspace (so it
    /// belongs to whoever may see its root, and to nobody else); null otherwise, and nothing is written.
    /// </summary>
    private async Task<SessionRecord?> RecordDescendantAsync(GatewayUser user, string sessionId, string? upstream, CancellationToken ct)
    {
        OpencodeClient client;
        IReadOnlyList<string> ancestors;
        try
        {
            client = await sessions.ResolveAsync(sessionId, upstream, ct);
            ancestors = await tree.GetAncestorsAsync(new SessionKey(client.UpstreamId, sessionId), ct);
        }
        catch (GatewayException e) when (e.Code == GatewayErrorCodes.SessionNotFound)
        {
            return null;
        }

        foreach (var ancestor in ancestors)
        {
            if (await store.GetAsync(ancestor, ct) is not { } owner)
            {
                continue;
            }

            if (!user.CanSee(owner.OwnerId, owner.Workspace) || owner.Upstream != client.UpstreamId)
            {
                return null;
            }

            var info = await client.GetSessionAsync(sessionId, ct);
            var record = NewRecord(sessionId, client.UpstreamId, owner.OwnerId, owner.Workspace, StringOf(info, "title"), [], "{}")
                with { ParentId = ancestors[0] };
            try
            {
                await store.InsertAsync(record, ct);
            }
            catch (SessionExistsException)
            {
                return await store.GetAsync(sessionId, ct); // recorded meanwhile (another tab, another node)
            }

            CatalogLog.DescendantRecorded(logger, sessionId, ancestors[^1], owner.OwnerId);
            return record;
        }

        return null;
    }

    public async Task<SessionList> ListAsync(GatewayUser user, ListSessionsRequest request, CancellationToken ct)
    {
        var limit = request.Limit ?? SessionRules.DefaultPageSize;
        if (limit is < 1 or > SessionRules.MaxPageSize)
        {
            throw GatewayException.Invalid("limit", $"must be between 1 and {SessionRules.MaxPageSize}.");
        }

        SessionCursor? after = null;
        if (request.Cursor is not null && !SessionCursor.TryDecode(request.Cursor, out after))
        {
            throw GatewayException.Invalid("cursor", "is not a cursor this API returned.");
        }

        SessionRules.ValidateWorkspace(request.Workspace);
        if (request.Tag is not null)
        {
            SessionRules.NormalizeTags([request.Tag], "tag");
        }

        if (request.Q is { Length: > SessionRules.MaxQueryLength })
        {
            throw GatewayException.Invalid("q", $"must be at most {SessionRules.MaxQueryLength} characters.");
        }

        if (request.Q is { } q)
        {
            SessionRules.RequireWellFormed(q, "q");
        }

        var page = await store.ListAsync(new SessionQuery
        {
            VisibleTo = user.IsAdmin ? null : user.UserId,
            VisibleWorkspaces = user.Workspaces,
            Workspace = request.Workspace,
            Tag = request.Tag,
            Archived = request.Archived ?? false,
            TitleContains = string.IsNullOrEmpty(request.Q) ? null : request.Q,
            After = after,
            Limit = limit,
        }, ct);
        return new SessionList([.. page.Items.Select(r => r.ToContract())], page.Next?.Encode());
    }

    /// <summary>The record joined with opencode's live session info, status and last assistant message.</summary>
    public async Task<SessionDetails> GetDetailsAsync(GatewayUser user, string sessionId, CancellationToken ct)
    {
        var record = await GetVisibleAsync(user, sessionId, ct);
        try
        {
            var client = await sessions.ResolveAsync(sessionId, record.Upstream, ct);
            var infoTask = client.GetSessionAsync(sessionId, ct);
            var messagesTask = client.GetMessagesAsync(sessionId, ct, limit: 20);
            var info = await infoTask;
            var directory = StringOf(info, "directory");
            var statusMap = await client.GetStatusMapAsync(directory, ct);
            var status = statusMap.ValueKind == JsonValueKind.Object && statusMap.TryGetProperty(sessionId, out var s)
                ? s : JsonDocument.Parse("""{"type":"idle"}""").RootElement.Clone();
            var messages = await messagesTask;
            var lastAssistant = messages.LastOrDefault(m =>
                m.Info.TryGetProperty("role", out var role) && role.ValueEquals("assistant"));
            return new SessionDetails
            {
                Session = record.ToContract(),
                Info = info,
                Status = status,
                LastAssistantMessage = lastAssistant?.Info,
            };
        }
        catch (GatewayException e) when (e.Code is GatewayErrorCodes.UpstreamUnavailable or GatewayErrorCodes.UpstreamError
                                             or GatewayErrorCodes.SessionNotFound or GatewayErrorCodes.BadRequest)
        {
            // The record is still worth answering with: say why the live part is missing.
            return new SessionDetails { Session = record.ToContract(), LiveError = e.Code };
        }
    }

    /// <summary>Changes title (also on opencode), tags (replaced) and metadata (JSON Merge Patch).</summary>
    public async Task<SessionRecord> UpdateAsync(GatewayUser user, string sessionId, SessionPatch patch, CancellationToken ct)
    {
        SessionRules.ValidateTitle(patch.Title);
        var tags = patch.Tags is null ? null : SessionRules.NormalizeTags(patch.Tags);
        if (patch.Metadata is { } m && m.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid("metadata", "must be a JSON object (a JSON Merge Patch of the metadata).");
        }

        var current = await GetVisibleAsync(user, sessionId, ct);
        if (patch.Title is not null && !string.Equals(patch.Title, current.Title, StringComparison.Ordinal))
        {
            var client = await sessions.ResolveAsync(sessionId, current.Upstream, ct);
            await client.UpdateSessionTitleAsync(sessionId, patch.Title, ct);
        }

        var now = SessionRecord.Truncate(time.GetUtcNow());
        var updated = await store.UpdateAsync(sessionId, row =>
        {
            if (!user.CanSee(row.OwnerId, row.Workspace))
            {
                throw GatewayException.SessionNotFound(sessionId);
            }

            var metadata = patch.ClearMetadata ? "{}" : row.Metadata;
            if (patch.Metadata is { } merge)
            {
                metadata = SessionRules.ApplyMergePatch(metadata, merge);
            }

            return row with
            {
                Title = patch.Title ?? row.Title,
                Tags = tags ?? row.Tags,
                Metadata = metadata,
                UpdatedAt = Later(now, row.UpdatedAt),
            };
        }, ct) ?? throw GatewayException.SessionNotFound(sessionId);
        await lists.NotifyAsync(new SessionListChange(SessionListChangeKinds.Updated, updated.ToContract()));
        return updated;
    }

    /// <summary>Archives the record (sets archived_at); with <paramref name="deleteUpstream"/> also deletes it on opencode.</summary>
    public async Task<SessionRecord> ArchiveAsync(GatewayUser user, string sessionId, bool deleteUpstream, CancellationToken ct)
    {
        var current = await GetVisibleAsync(user, sessionId, ct);
        if (deleteUpstream)
        {
            var client = upstreams.Get(current.Upstream);
            try
            {
                await client.DeleteSessionAsync(sessionId, ct);
            }
            catch (GatewayException e) when (e.Code == GatewayErrorCodes.SessionNotFound)
            {
                // already gone upstream: archiving the record is all that is left to do
            }
        }

        var now = SessionRecord.Truncate(time.GetUtcNow());
        var archivedNow = false;
        var updated = await store.UpdateAsync(sessionId, row =>
        {
            if (!user.CanSee(row.OwnerId, row.Workspace))
            {
                throw GatewayException.SessionNotFound(sessionId);
            }

            archivedNow = row.ArchivedAt is null;
            return archivedNow ? row with { ArchivedAt = now, UpdatedAt = Later(now, row.UpdatedAt) } : row;
        }, ct) ?? throw GatewayException.SessionNotFound(sessionId);
        if (archivedNow)
        {
            await lists.NotifyAsync(new SessionListChange(SessionListChangeKinds.Archived, updated.ToContract()));
        }

        return updated;
    }

    /// <summary>Admins: gives a session created directly on opencode (no record) a record and an owner.</summary>
    public async Task<SessionRecord> AdoptAsync(GatewayUser user, string sessionId, AdoptSessionRequest request, CancellationToken ct)
    {
        if (!user.IsAdmin)
        {
            throw new GatewayException(GatewayErrorCodes.Forbidden, "Only admins may adopt sessions.");
        }

        SessionService.ValidateSessionId(sessionId);
        if (!Identifiers.IsValidUserId(request.OwnerId))
        {
            throw GatewayException.Invalid("ownerId", Identifiers.UserIdRule + ".");
        }

        SessionRules.ValidateWorkspace(request.Workspace);
        var tags = SessionRules.NormalizeTags(request.Tags);
        var metadata = SessionRules.InitialMetadata(request.Metadata);
        if (await store.GetAsync(sessionId, ct) is not null)
        {
            throw new GatewayException(GatewayErrorCodes.Conflict, $"Session '{sessionId}' already has a record.");
        }

        var client = await sessions.ResolveAsync(sessionId, request.Upstream, ct);
        var info = await client.GetSessionAsync(sessionId, ct);
        var record = NewRecord(sessionId, client.UpstreamId, request.OwnerId, request.Workspace, StringOf(info, "title"), tags, metadata);
        try
        {
            await store.InsertAsync(record, ct);
        }
        catch (SessionExistsException e)
        {
            throw new GatewayException(GatewayErrorCodes.Conflict, $"Session '{sessionId}' already has a record.", e);
        }

        CatalogLog.SessionAdopted(logger, sessionId, user.UserId, request.OwnerId);
        await lists.NotifyAsync(new SessionListChange(SessionListChangeKinds.Created, record.ToContract()));
        return record;
    }

    private SessionRecord NewRecord(string sessionId, string upstream, string ownerId, string? workspace, string? title,
        IReadOnlyList<string> tags, string metadata)
    {
        var now = SessionRecord.Truncate(time.GetUtcNow());
        return new SessionRecord
        {
            SessionId = sessionId, Upstream = upstream, OwnerId = ownerId, Workspace = workspace, Title = title,
            Tags = tags, Metadata = metadata, CreatedAt = now, UpdatedAt = now,
        };
    }

    // updated_at only moves forward, so a change always moves the row to the front of "newest first".
    private static DateTimeOffset Later(DateTimeOffset now, DateTimeOffset previous) => now > previous ? now : previous.AddTicks(10);

    private static string? StringOf(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() : null;
}
