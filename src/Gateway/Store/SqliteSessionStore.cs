using System.Data.Common;
using System.Text.Json;
using Dapper;
using Microsoft.Data.Sqlite;

namespace OpencodeGateway.Store;

/// <summary>The embedded session store: one SQLite file (WAL), pooled connections.</summary>
internal sealed class SqliteSessionStore : SqlSessionStore
{
    private const int SqliteConstraint = 19;
    private const int SqliteConstraintPrimaryKey = 1555;
    private const int SqliteConstraintUnique = 2067;

    private readonly string _connectionString;

    public SqliteSessionStore(string connectionString)
    {
        var builder = new SqliteConnectionStringBuilder(connectionString);
        if (builder.DefaultTimeout < 30)
        {
            builder.DefaultTimeout = 30; // seconds a statement waits for another writer (SQLITE_BUSY is retried)
        }

        if (!string.IsNullOrEmpty(builder.DataSource) && builder.Mode != SqliteOpenMode.Memory
            && Path.GetDirectoryName(Path.GetFullPath(builder.DataSource)) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }

        _connectionString = builder.ToString();
    }

    /// <summary>The connection string of a database file <c>gateway.db</c> in <paramref name="dataDirectory"/>.</summary>
    public static string ConnectionStringFor(string dataDirectory) => new SqliteConnectionStringBuilder
    {
        DataSource = Path.Combine(dataDirectory, "gateway.db"),
        Mode = SqliteOpenMode.ReadWriteCreate,
        Cache = SqliteCacheMode.Private,
        Pooling = true,
        DefaultTimeout = 30,
    }.ToString();

    public override string Provider => StoreProviders.Sqlite;

    // The pool of this store's file only (a busy or locked database is SQLite's transient failure).
    protected override void ClearPool()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }

    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct);
            await connection.ExecuteAsync(new CommandDefinition("PRAGMA foreign_keys = ON", cancellationToken: ct));
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    protected override string MetadataAsText => "s.metadata";
    protected override string MetadataParameter => "@Metadata";
    protected override string WorkspaceInList => "s.workspace_id IN @Workspaces";
    protected override string HasTag => "EXISTS (SELECT 1 FROM session_tags t WHERE t.tag = @Tag AND t.session_id = s.id)";
    protected override string LikeOperator => "LIKE";

    protected override string CreateMigrationsTableSql => """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER NOT NULL PRIMARY KEY,
            name       TEXT    NOT NULL,
            checksum   TEXT    NOT NULL,
            applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """;

    protected override object TagsToParameter(IReadOnlyList<string> tags) => JsonSerializer.Serialize(tags);

    protected override IReadOnlyList<string> TagsFromColumn(object value) =>
        JsonSerializer.Deserialize<string[]>((string)value) ?? [];

    protected override object TimestampToParameter(DateTimeOffset value) =>
        (value.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    protected override DateTimeOffset TimestampFromColumn(object value) =>
        DateTimeOffset.UnixEpoch.AddTicks(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) * 10);

    protected override bool IsUniqueViolation(DbException e) =>
        e is SqliteException { SqliteErrorCode: SqliteConstraint } se
        && se.SqliteExtendedErrorCode is SqliteConstraintPrimaryKey or SqliteConstraintUnique;

    protected override async Task<DbTransaction> BeginMigrationAsync(DbConnection connection, CancellationToken ct)
    {
        await connection.ExecuteAsync(new CommandDefinition("PRAGMA journal_mode = WAL", cancellationToken: ct));
        // BEGIN IMMEDIATE: takes the write lock now, so a second process waits (busy timeout) instead of both
        // reading "nothing applied" and racing.
        return ((SqliteConnection)connection).BeginTransaction(deferred: false);
    }
}
