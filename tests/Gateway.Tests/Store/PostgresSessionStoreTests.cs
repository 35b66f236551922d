using Gateway.Tests.Support;
using Npgsql;
using OpencodeGateway.Store;

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
    public async Task After_the_server_cut_every_pooled_connection_each_call_still_succeeds()
    {
        // What a PostgreSQL restart leaves behind: a pool of dead connections. Each call retries once on a fresh one.
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var id = $"ses_pool{i}x";
            await Store.InsertAsync(new SessionRecord
            {
                SessionId = id, Upstream = "local", OwnerId = "alice", CreatedAt = DateTimeOffset.UnixEpoch, UpdatedAt = DateTimeOffset.UnixEpoch,
            }, CancellationToken.None);
            ids.Add(id);
        }

        // Several connections in the pool, all then terminated by the server.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Store.GetAsync(ids[0], CancellationToken.None)));
        var database = new NpgsqlConnectionStringBuilder(_connectionString).Database;
        Assert.True(await ScalarAsync($"SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()) t") > 0);

        Assert.NotNull(await Store.GetAsync(ids[1], CancellationToken.None));
        Assert.Equal(3, (await Store.ListAsync(new SessionQuery { VisibleTo = "alice", Limit = 10 }, CancellationToken.None)).Items.Count);
        Assert.NotNull(await Store.UpdateAsync(ids[2], r => r with { Title = "after" }, CancellationToken.None));
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
