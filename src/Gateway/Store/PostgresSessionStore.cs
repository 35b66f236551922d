using System.Data.Common;
using Dapper;
using Npgsql;

namespace OpencodeGateway.Store;

/// <summary>The session store on PostgreSQL, through one pooled <see cref="NpgsqlDataSource"/>.</summary>
internal sealed class PostgresSessionStore(NpgsqlDataSource dataSource) : SqlSessionStore, IAsyncDisposable, IDisposable
{
    /// <summary>Key of the advisory lock that serialises migrations of every gateway process ("opencode" in ASCII).</summary>
    public const long MigrationLockKey = 0x6f70656e636f6465;

    public override string Provider => StoreProviders.Postgres;

    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken ct) => await dataSource.OpenConnectionAsync(ct);

    protected override void ClearPool() => dataSource.Clear();

    protected override string MetadataAsText => "s.metadata::text";
    protected override string MetadataParameter => "CAST(@Metadata AS jsonb)";
    protected override string WorkspaceInList => "s.workspace_id = ANY(@Workspaces)";
    protected override string HasTag => "s.tags @> ARRAY[@Tag]::text[]";
    protected override string LikeOperator => "ILIKE";

    protected override string CreateMigrationsTableSql => """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    bigint      PRIMARY KEY,
            name       text        NOT NULL,
            checksum   text        NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """;

    protected override object TagsToParameter(IReadOnlyList<string> tags) => tags.ToArray();

    protected override IReadOnlyList<string> TagsFromColumn(object value) => (string[])value;

    protected override object TimestampToParameter(DateTimeOffset value) => value.ToUniversalTime();

    protected override DateTimeOffset TimestampFromColumn(object value) => value switch
    {
        DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
        DateTimeOffset dto => dto.ToUniversalTime(),
        _ => throw new InvalidOperationException($"Unexpected timestamp type {value.GetType()}."),
    };

    protected override bool IsUniqueViolation(DbException e) =>
        e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    protected override async Task<DbTransaction> BeginMigrationAsync(DbConnection connection, CancellationToken ct)
    {
        var tx = await connection.BeginTransactionAsync(ct);
        // Transaction-scoped: a second process waits here until the first commits, then sees its migrations.
        await connection.ExecuteAsync(new CommandDefinition("SELECT pg_advisory_xact_lock(@key)",
            new { key = MigrationLockKey }, tx, cancellationToken: ct));
        return tx;
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();

    public void Dispose() => dataSource.Dispose();
}
