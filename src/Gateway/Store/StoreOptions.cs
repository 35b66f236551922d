using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Npgsql;
using OpencodeGateway.Cluster;

namespace OpencodeGateway.Store;

/// <summary>
/// <c>Gateway:Store</c>. The database is chosen by <see cref="Provider"/> or, when that is empty, by the connection
/// string: one starting with <c>Host=</c> means PostgreSQL, so setting <c>ConnectionStrings:Gateway</c> alone switches.
/// </summary>
public sealed class StoreOptions
{
    public const string SectionName = "Gateway:Store";
    public const string ConnectionStringKey = "ConnectionStrings:Gateway";

    /// <summary><c>sqlite</c> or <c>postgres</c>; empty: PostgreSQL when the connection string starts with <c>Host=</c>, else SQLite.</summary>
    public string? Provider { get; set; }

    /// <summary><c>Gateway:Store:ConnectionString</c>; when empty, <c>ConnectionStrings:Gateway</c> is used.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Folder of the SQLite file <c>gateway.db</c> when no SQLite connection string is given (relative to the content root).</summary>
    public string DataDirectory { get; set; } = "./data";

    /// <summary>Copied from <c>ConnectionStrings:Gateway</c> at binding.</summary>
    internal string? NamedConnectionString { get; set; }

    /// <summary>Set at binding when cluster mode is on (<c>ConnectionStrings:Redis</c>): every node must share the store.</summary>
    internal bool SharedByNodes { get; set; }

    /// <summary>Copied from the host's content root at binding.</summary>
    internal string ContentRoot { get; set; } = AppContext.BaseDirectory;

    internal string? EffectiveConnectionString =>
        !string.IsNullOrWhiteSpace(ConnectionString) ? ConnectionString : NamedConnectionString;

    internal string ConnectionStringSource =>
        !string.IsNullOrWhiteSpace(ConnectionString) ? $"{SectionName}:ConnectionString" : ConnectionStringKey;

    internal static bool LooksLikePostgres(string? connectionString) =>
        connectionString is not null && connectionString.TrimStart().StartsWith("Host=", StringComparison.OrdinalIgnoreCase);

    /// <summary>The provider this configuration selects (after validation).</summary>
    internal string ResolvedProvider =>
        !string.IsNullOrWhiteSpace(Provider) ? Provider.Trim().ToLowerInvariant()
        : LooksLikePostgres(EffectiveConnectionString) ? StoreProviders.Postgres
        : StoreProviders.Sqlite;

    internal string ResolvedSqliteConnectionString =>
        !string.IsNullOrWhiteSpace(EffectiveConnectionString) ? EffectiveConnectionString!
        : SqliteSessionStore.ConnectionStringFor(Path.GetFullPath(DataDirectory, ContentRoot));
}

/// <summary>Checks <see cref="StoreOptions"/> at start-up; every failure names its key.</summary>
internal sealed class StoreOptionsValidator : IValidateOptions<StoreOptions>
{
    public ValidateOptionsResult Validate(string? name, StoreOptions options)
    {
        var failures = new List<string>();
        var provider = options.ResolvedProvider;
        var connectionString = options.EffectiveConnectionString;
        if (provider is not (StoreProviders.Sqlite or StoreProviders.Postgres))
        {
            failures.Add($"{StoreOptions.SectionName}:Provider: '{options.Provider}' must be 'sqlite' or 'postgres'");
        }
        else if (provider == StoreProviders.Postgres)
        {
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                failures.Add($"{StoreOptions.ConnectionStringKey}: a PostgreSQL connection string (Host=…;Database=…;Username=…) is required when {StoreOptions.SectionName}:Provider is 'postgres'");
            }
            else
            {
                try
                {
                    _ = new NpgsqlConnectionStringBuilder(connectionString);
                }
                catch (ArgumentException e)
                {
                    failures.Add($"{options.ConnectionStringSource}: not a valid PostgreSQL connection string ({e.Message})");
                }
            }
        }
        else if (options.SharedByNodes)
        {
            failures.Add($"{StoreOptions.ConnectionStringKey}: cluster mode ({ClusterOptions.ConnectionStringKey} is set) needs the "
                + "PostgreSQL store every node shares (Host=…;Database=…;Username=…); the SQLite store is one node's file");
        }
        else
        {
            if (LooksLikePostgresWhileSqlite(options))
            {
                failures.Add($"{StoreOptions.SectionName}:Provider: 'sqlite' was set but {options.ConnectionStringSource} is a PostgreSQL connection string (Host=…)");
            }
            else if (!string.IsNullOrWhiteSpace(connectionString))
            {
                try
                {
                    _ = new SqliteConnectionStringBuilder(connectionString);
                }
                catch (ArgumentException e)
                {
                    failures.Add($"{options.ConnectionStringSource}: not a valid SQLite connection string ({e.Message})");
                }
            }
            else if (string.IsNullOrWhiteSpace(options.DataDirectory))
            {
                failures.Add($"{StoreOptions.SectionName}:DataDirectory: must not be empty");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static bool LooksLikePostgresWhileSqlite(StoreOptions options) => StoreOptions.LooksLikePostgres(options.EffectiveConnectionString);
}
