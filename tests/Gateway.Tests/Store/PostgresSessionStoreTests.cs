using Gateway.Tests.Support;
using Npgsql;
using OpencodeGateway.Sessions.Store;

namespace Gateway.Tests.Store;

[Collection(PostgresCollection.Name)]
public sealed class PostgresSessionStoreTests(PostgresFixture postgres) : SessionStoreSpec
{
    private string _connectionString = "";

    public override async Task InitializeAsync()
    {
        _connectionString = await postgres.CreateDatabaseAsync();
        await base.InitializeAsync();
    }

    internal override Task<ISessionStore> OpenStoreAsync() =>
        Task.FromResult<ISessionStore>(new PostgresSessionStore(NpgsqlDataSource.Create(_connectionString)));

    protected override async Task UseFreshDatabaseAsync() => _connectionString = await postgres.CreateDatabaseAsync();

    protected override async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Tags_use_a_gin_index_and_metadata_is_jsonb()
    {
        Assert.Equal("postgres", Store.Provider);
        Assert.Equal(1, await ScalarAsync("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'sessions' AND indexdef ILIKE '%USING gin (tags)%'"));
        Assert.Equal(1, await ScalarAsync(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'sessions' AND column_name = 'metadata' AND data_type = 'jsonb'"));
    }
}
