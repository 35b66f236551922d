using Npgsql;
using OpencodeGateway.Testing;

namespace Gateway.Tests.Support;

/// <summary>
/// A PostgreSQL server for tests: <c>GATEWAY_TEST_POSTGRES</c> when set; otherwise, outside CI, the dev server of
/// <c>deploy/dev/postgres.sh start</c> (started here; idempotent). In CI (<c>CI</c> set) a missing
/// <c>GATEWAY_TEST_POSTGRES</c> fails the tests instead of silently skipping them.
/// Each test gets its own fresh database (<see cref="CreateDatabaseAsync"/>).
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    private readonly List<string> _databases = [];

    public string ServerConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable("GATEWAY_TEST_POSTGRES");
        if (string.IsNullOrWhiteSpace(configured))
        {
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            {
                throw new InvalidOperationException(
                    "GATEWAY_TEST_POSTGRES is not set and CI is: the PostgreSQL store tests must run in CI. "
                    + "Set it to a connection string (e.g. the output of deploy/dev/postgres.sh start).");
            }

            configured = await StartDevServerAsync();
        }

        ServerConnectionString = configured;
        await using var connection = new NpgsqlConnection(ServerConnectionString);
        await connection.OpenAsync();
    }

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "gw_test_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(ServerConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }

        lock (_databases)
        {
            _databases.Add(name);
        }

        return new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = name }.ConnectionString;
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(ServerConnectionString);
        await connection.OpenAsync();
        foreach (var name in _databases)
        {
            await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    private static async Task<string> StartDevServerAsync() =>
        (await RepoScript.RunAsync("deploy/dev/postgres.sh", ["start"])).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Last(l => l.StartsWith("Host=", StringComparison.Ordinal));
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}
