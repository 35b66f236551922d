using Microsoft.Data.Sqlite;
using OpencodeGateway.Store;

namespace Gateway.Tests.Store;

public sealed class SqliteSessionStoreTests : SessionStoreSpec
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "gw-store-" + Guid.NewGuid().ToString("N"));
    private string _connectionString = "";

    public override Task InitializeAsync()
    {
        _connectionString = SqliteSessionStore.ConnectionStringFor(_directory);
        return base.InitializeAsync();
    }

    internal override Task<ISessionStore> OpenStoreAsync() => Task.FromResult<ISessionStore>(new SqliteSessionStore(_connectionString));

    protected override Task UseFreshDatabaseAsync()
    {
        _connectionString = SqliteSessionStore.ConnectionStringFor(Path.Combine(_directory, "fresh"));
        return Task.CompletedTask;
    }

    protected override async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task The_database_uses_write_ahead_logging()
    {
        Assert.Equal("sqlite", Store.Provider);
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync());
    }
}
