namespace OpencodeGateway.Store;

internal static class StoreProviders
{
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";
}
