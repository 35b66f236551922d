using System.Data.Common;
using System.Text;
using Dapper;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Store;

/// <summary>
/// The Dapper code both databases share (sessions, chats, and the upstreams registered at run time). Where their SQL differs (types of tags, metadata and timestamps, the tag
/// filter, case-insensitive LIKE, the migration lock) the subclass says how.
/// </summary>
internal abstract class SqlSessionStore : ISessionStore, IUpstreamStore
{
    private const int MaxUpdateAttempts = 16;

    public abstract string Provider { get; }

    protected abstract ValueTask<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>Closes the pool's idle connections (after a database restart every one of them is dead).</summary>
    protected abstract void ClearPool();

    /// <summary>SQL of the metadata column read as text.</summary>
    protected abstract string MetadataAsText { get; }

    /// <summary>SQL that turns the <c>@Metadata</c> text parameter into the column's type.</summary>
    protected abstract string MetadataParameter { get; }

    /// <summary>SQL true when column <c>s.workspace_id</c> is one of <c>@Workspaces</c>.</summary>
    protected abstract string WorkspaceInList { get; }

    /// <summary>SQL true when row <c>s</c> has tag <c>@Tag</c>.</summary>
    protected abstract string HasTag { get; }

    /// <summary>Case-insensitive LIKE operator.</summary>
    protected abstract string LikeOperator { get; }

    protected abstract object TagsToParameter(IReadOnlyList<string> tags);
    protected abstract IReadOnlyList<string> TagsFromColumn(object value);
    protected abstract object TimestampToParameter(DateTimeOffset value);
    protected abstract DateTimeOffset TimestampFromColumn(object value);
    protected abstract bool IsUniqueViolation(DbException e);

    /// <summary>Opens the migration transaction, holding the lock that serialises migrating processes.</summary>
    protected abstract Task<DbTransaction> BeginMigrationAsync(DbConnection connection, CancellationToken ct);

    protected abstract string CreateMigrationsTableSql { get; }

    private string SelectColumns => $"""
        s.id AS SessionId, s.upstream_id AS Upstream, s.parent_id AS ParentId, s.owner_id AS OwnerId, s.workspace_id AS Workspace,
        s.title AS Title, s.tags AS Tags, {MetadataAsText} AS Metadata, s.version AS Version,
        s.created_at AS CreatedAt, s.updated_at AS UpdatedAt, s.archived_at AS ArchivedAt
        """;

    public async Task<IReadOnlyList<int>> MigrateAsync(CancellationToken ct)
    {
        var migrations = Migration.Load(Provider);
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginMigrationAsync(connection, ct);
        await connection.ExecuteAsync(new CommandDefinition(CreateMigrationsTableSql, transaction: tx, cancellationToken: ct));
        var applied = (await connection.QueryAsync<(long Version, string Name, string Checksum)>(new CommandDefinition(
            "SELECT version, name, checksum FROM schema_migrations", transaction: tx, cancellationToken: ct)))
            .ToDictionary(m => (int)m.Version);

        var done = new List<int>();
        foreach (var migration in migrations)
        {
            if (applied.TryGetValue(migration.Version, out var existing))
            {
                if (existing.Checksum != migration.Checksum)
                {
                    throw new InvalidOperationException(
                        $"Migration {migration.Version} ({migration.Name}) was changed after it was applied to the {Provider} database "
                        + $"(checksum {existing.Checksum}, file {migration.Checksum}); add a new migration instead.");
                }

                continue;
            }

            await connection.ExecuteAsync(new CommandDefinition(migration.Sql, transaction: tx, cancellationToken: ct));
            await connection.ExecuteAsync(new CommandDefinition(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (@Version, @Name, @Checksum)",
                new { migration.Version, migration.Name, migration.Checksum }, tx, cancellationToken: ct));
            done.Add(migration.Version);
        }

        await tx.CommitAsync(ct);
        return done;
    }

    /// <summary>
    /// Runs <paramref name="operation"/> on a pooled connection. A database restart leaves the pool full of dead
    /// connections, so a transient failure clears the pool and runs the operation once more on a fresh one; every
    /// operation here is safe to run twice (an insert that did land the first time is recognised as such).
    /// </summary>
    private async Task<T> RunAsync<T>(Func<DbConnection, Task<T>> operation, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var connection = await OpenAsync(ct);
                return await operation(connection);
            }
            catch (DbException e) when (e.IsTransient && attempt == 0 && !ct.IsCancellationRequested)
            {
                ClearPool();
            }
        }
    }

    public Task PingAsync(CancellationToken ct) =>
        RunAsync(connection => connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT 1", cancellationToken: ct)), ct);

    public Task InsertAsync(SessionRecord record, CancellationToken ct) => RunAsync(async connection =>
    {
        try
        {
            await connection.ExecuteAsync(new CommandDefinition($"""
                INSERT INTO sessions (id, upstream_id, parent_id, owner_id, workspace_id, title, tags, metadata, version,
                                      created_at, updated_at, archived_at)
                VALUES (@SessionId, @Upstream, @ParentId, @OwnerId, @Workspace, @Title, @Tags, {MetadataParameter}, @Version,
                        @CreatedAt, @UpdatedAt, @ArchivedAt)
                """, Parameters(record), cancellationToken: ct));
        }
        catch (DbException e) when (IsUniqueViolation(e))
        {
            // This very record (same owner, upstream and creation instant, to the microsecond): the first attempt's
            // insert landed and only its answer was lost.
            if (await GetAsync(connection, record.SessionId, ct) is not { } existing
                || (existing.OwnerId, existing.Upstream, existing.CreatedAt, existing.Version) != (record.OwnerId, record.Upstream, record.CreatedAt, record.Version))
            {
                throw new SessionExistsException(record.SessionId, e);
            }
        }

        return true;
    }, ct);

    public Task<SessionRecord?> GetAsync(string sessionId, CancellationToken ct) =>
        RunAsync(connection => GetAsync(connection, sessionId, ct), ct);

    private async Task<SessionRecord?> GetAsync(DbConnection connection, string sessionId, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<Row>(new CommandDefinition(
            $"SELECT {SelectColumns} FROM sessions s WHERE s.id = @sessionId", new { sessionId }, cancellationToken: ct));
        return row is null ? null : ToRecord(row);
    }

    public async Task<SessionPage> ListAsync(SessionQuery query, CancellationToken ct)
    {
        // Subagents' sessions belong to their root's run: lists show roots.
        var sql = new StringBuilder($"SELECT {SelectColumns} FROM sessions s WHERE s.parent_id IS NULL");
        var parameters = new DynamicParameters();
        if (query.VisibleTo is not null)
        {
            parameters.Add("UserId", query.VisibleTo);
            if (query.VisibleWorkspaces.Count > 0)
            {
                sql.Append($" AND (s.owner_id = @UserId OR {WorkspaceInList})");
                parameters.Add("Workspaces", query.VisibleWorkspaces.ToArray());
            }
            else
            {
                sql.Append(" AND s.owner_id = @UserId");
            }
        }

        if (query.Workspace is not null)
        {
            sql.Append(" AND s.workspace_id = @Workspace");
            parameters.Add("Workspace", query.Workspace);
        }

        if (query.Tag is not null)
        {
            sql.Append($" AND {HasTag}");
            parameters.Add("Tag", query.Tag);
        }

        if (query.Archived is { } archived)
        {
            sql.Append(archived ? " AND s.archived_at IS NOT NULL" : " AND s.archived_at IS NULL");
        }

        if (!string.IsNullOrEmpty(query.TitleContains))
        {
            sql.Append($" AND s.title {LikeOperator} @Q ESCAPE '\\'");
            parameters.Add("Q", "%" + EscapeLike(query.TitleContains) + "%");
        }

        if (query.After is not null)
        {
            // Row-value comparison (PostgreSQL, SQLite ≥ 3.15): strictly after the cursor in (updated_at DESC, id DESC).
            sql.Append(" AND (s.updated_at, s.id) < (@AfterUpdated, @AfterId)");
            parameters.Add("AfterUpdated", TimestampToParameter(query.After.UpdatedAt));
            parameters.Add("AfterId", query.After.SessionId);
        }

        sql.Append(" ORDER BY s.updated_at DESC, s.id DESC LIMIT @Take");
        parameters.Add("Take", query.Limit + 1);

        var rows = (await RunAsync(connection => connection.QueryAsync<Row>(
            new CommandDefinition(sql.ToString(), parameters, cancellationToken: ct)), ct)).Select(ToRecord).ToList();
        if (rows.Count <= query.Limit)
        {
            return new SessionPage(rows, Next: null);
        }

        rows.RemoveAt(rows.Count - 1);
        var last = rows[^1];
        return new SessionPage(rows, new SessionCursor(last.UpdatedAt, last.SessionId));
    }

    // Run twice, the change is applied to the row as it then is: titles and tags are set again, a merge patch applied
    // twice gives what it gave once, an archive stays.
    public Task<SessionRecord?> UpdateAsync(string sessionId, Func<SessionRecord, SessionRecord> change, CancellationToken ct) =>
        RunAsync(connection => UpdateAsync(connection, sessionId, change, ct), ct);

    private async Task<SessionRecord?> UpdateAsync(DbConnection connection, string sessionId, Func<SessionRecord, SessionRecord> change,
        CancellationToken ct)
    {
        for (var attempt = 0; attempt < MaxUpdateAttempts; attempt++)
        {
            var current = await GetAsync(connection, sessionId, ct);
            if (current is null)
            {
                return null;
            }

            var next = change(current) with { SessionId = current.SessionId, Version = current.Version + 1 };
            var parameters = Parameters(next);
            parameters.Add("ExpectedVersion", current.Version);
            var updated = await connection.ExecuteAsync(new CommandDefinition($"""
                UPDATE sessions
                SET upstream_id = @Upstream, owner_id = @OwnerId, workspace_id = @Workspace, title = @Title,
                    tags = @Tags, metadata = {MetadataParameter}, version = @Version, updated_at = @UpdatedAt,
                    archived_at = @ArchivedAt
                WHERE id = @SessionId AND version = @ExpectedVersion
                """, parameters, cancellationToken: ct));
            if (updated == 1)
            {
                return next;
            }

            // Someone else wrote the row between our read and our write: start again from their version.
            await Task.Delay(Random.Shared.Next(1, 5 + attempt * 5), ct);
        }

        throw new GatewayException(GatewayErrorCodes.Conflict,
            $"Session '{sessionId}' is being changed by others; try again.");
    }

    public Task<bool> TryInsertChatAsync(ChatRecord chat, CancellationToken ct) => RunAsync(async connection =>
    {
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO ai_sdk_chats (owner_id, chat_id, session_id, created_at)
                VALUES (@OwnerId, @ChatId, @SessionId, @CreatedAt)
                """, new { chat.OwnerId, chat.ChatId, chat.SessionId, CreatedAt = TimestampToParameter(chat.CreatedAt) },
                cancellationToken: ct));
            return true;
        }
        catch (DbException e) when (IsUniqueViolation(e))
        {
            // Mapped already: by the first attempt, whose answer was lost, when it maps to this very session.
            return await GetChatAsync(connection, chat.OwnerId, chat.ChatId, ct) is { } existing
                && existing.SessionId == chat.SessionId && existing.CreatedAt == chat.CreatedAt;
        }
    }, ct);

    public Task<ChatRecord?> GetChatAsync(string ownerId, string chatId, CancellationToken ct) =>
        RunAsync(connection => GetChatAsync(connection, ownerId, chatId, ct), ct);

    private async Task<ChatRecord?> GetChatAsync(DbConnection connection, string ownerId, string chatId, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<ChatRow>(new CommandDefinition("""
            SELECT owner_id AS OwnerId, chat_id AS ChatId, session_id AS SessionId, created_at AS CreatedAt
            FROM ai_sdk_chats WHERE owner_id = @ownerId AND chat_id = @chatId
            """, new { ownerId, chatId }, cancellationToken: ct));
        return row is null ? null : new ChatRecord(row.OwnerId, row.ChatId, row.SessionId, TimestampFromColumn(row.CreatedAt));
    }

    public Task<IReadOnlyList<RegisteredUpstream>> ListUpstreamsAsync(CancellationToken ct) => RunAsync(async connection =>
    {
        var rows = await connection.QueryAsync<UpstreamRow>(new CommandDefinition("""
            SELECT id AS Id, base_url AS BaseUrl, directory AS Directory, password AS Password, created_at AS CreatedAt
            FROM upstreams ORDER BY created_at, id
            """, cancellationToken: ct));
        return (IReadOnlyList<RegisteredUpstream>)[.. rows.Select(r => new RegisteredUpstream(r.Id, r.BaseUrl, r.Directory, r.Password, TimestampFromColumn(r.CreatedAt)))];
    }, ct);

    public Task<bool> TryAddUpstreamAsync(RegisteredUpstream upstream, CancellationToken ct) => RunAsync(async connection =>
    {
        try
        {
            await connection.ExecuteAsync(new CommandDefinition("""
                INSERT INTO upstreams (id, base_url, directory, password, created_at)
                VALUES (@Id, @BaseUrl, @Directory, @Password, @CreatedAt)
                """, new { upstream.Id, upstream.BaseUrl, upstream.Directory, Password = upstream.SealedPassword,
                    CreatedAt = TimestampToParameter(upstream.CreatedAt) }, cancellationToken: ct));
            return true;
        }
        catch (DbException e) when (IsUniqueViolation(e))
        {
            // Registered already: by the first attempt, whose answer was lost, when the row is this very one.
            var existing = await connection.QuerySingleOrDefaultAsync<UpstreamRow>(new CommandDefinition(
                "SELECT id AS Id, base_url AS BaseUrl, directory AS Directory, password AS Password, created_at AS CreatedAt FROM upstreams WHERE id = @Id",
                new { upstream.Id }, cancellationToken: ct));
            return existing is not null && existing.Password == upstream.SealedPassword && TimestampFromColumn(existing.CreatedAt) == upstream.CreatedAt;
        }
    }, ct);

    public Task<bool> RemoveUpstreamAsync(string upstreamId, CancellationToken ct) => RunAsync(async connection =>
        await connection.ExecuteAsync(new CommandDefinition("DELETE FROM upstreams WHERE id = @upstreamId", new { upstreamId },
            cancellationToken: ct)) == 1, ct);

    private DynamicParameters Parameters(SessionRecord r)
    {
        var p = new DynamicParameters();
        p.Add("SessionId", r.SessionId);
        p.Add("Upstream", r.Upstream);
        p.Add("ParentId", r.ParentId);
        p.Add("OwnerId", r.OwnerId);
        p.Add("Workspace", r.Workspace);
        p.Add("Title", r.Title);
        p.Add("Tags", TagsToParameter(r.Tags));
        p.Add("Metadata", r.Metadata);
        p.Add("Version", r.Version);
        p.Add("CreatedAt", TimestampToParameter(r.CreatedAt));
        p.Add("UpdatedAt", TimestampToParameter(r.UpdatedAt));
        p.Add("ArchivedAt", r.ArchivedAt is { } a ? TimestampToParameter(a) : null);
        return p;
    }

    private SessionRecord ToRecord(Row row) => new()
    {
        SessionId = row.SessionId,
        Upstream = row.Upstream,
        ParentId = row.ParentId,
        OwnerId = row.OwnerId,
        Workspace = row.Workspace,
        Title = row.Title,
        Tags = TagsFromColumn(row.Tags),
        Metadata = row.Metadata,
        Version = row.Version,
        CreatedAt = TimestampFromColumn(row.CreatedAt),
        UpdatedAt = TimestampFromColumn(row.UpdatedAt),
        ArchivedAt = row.ArchivedAt is null or DBNull ? null : TimestampFromColumn(row.ArchivedAt),
    };

    private static string EscapeLike(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal)
            .Replace("_", "\\_", StringComparison.Ordinal);

    private sealed class UpstreamRow
    {
        public string Id { get; set; } = "";
        public string BaseUrl { get; set; } = "";
        public string? Directory { get; set; }
        public string? Password { get; set; }
        public object CreatedAt { get; set; } = 0L;
    }

    private sealed class ChatRow
    {
        public string OwnerId { get; set; } = "";
        public string ChatId { get; set; } = "";
        public string SessionId { get; set; } = "";
        public object CreatedAt { get; set; } = 0L;
    }

    /// <summary>A row as the database returns it: the provider-typed columns are converted by the subclass.</summary>
    private sealed class Row
    {
        public string SessionId { get; set; } = "";
        public string Upstream { get; set; } = "";
        public string? ParentId { get; set; }
        public string OwnerId { get; set; } = "";
        public string? Workspace { get; set; }
        public string? Title { get; set; }
        public object Tags { get; set; } = "";
        public string Metadata { get; set; } = "{}";
        public long Version { get; set; }
        public object CreatedAt { get; set; } = 0L;
        public object UpdatedAt { get; set; } = 0L;
        public object? ArchivedAt { get; set; }
    }
}
