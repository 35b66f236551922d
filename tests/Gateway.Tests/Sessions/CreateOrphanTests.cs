using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection;
using OpencodeGateway.Testing;
using OpencodeGateway.Store;

namespace Gateway.Tests.Sessions;

/// <summary>Create never leaves half a session: no record without an upstream session, no upstream session without a record.</summary>
public sealed class CreateOrphanTests
{
    [Fact]
    public async Task When_the_upstream_fails_no_record_is_written()
    {
        await using var host = await GatewayHost.StartAsync();
        host.Upstream.FailCreate = true;
        using var alice = host.HttpClient("alice");

        var response = await alice.PostAsJsonAsync("/api/sessions", new { title = "x" });

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("upstream_error", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("code").GetString());
        var store = host.Services.GetRequiredService<ISessionStore>();
        Assert.Empty((await store.ListAsync(new SessionQuery { Archived = null }, CancellationToken.None)).Items);
    }

    [Fact]
    public async Task When_the_record_cannot_be_written_the_upstream_session_is_deleted_again()
    {
        FailingInsertStore? failing = null;
        await using var host = await GatewayHost.StartAsync(new GatewayHostOptions
        {
            Configure = builder => builder.Services.AddSingleton<ISessionStore>(sp =>
                failing = new FailingInsertStore(StoreServiceCollectionExtensions.CreateStore(
                    sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<StoreOptions>>().Value))),
        });
        using var alice = host.HttpClient("alice");
        await using var hub = await host.ConnectHubAsync("alice");

        var response = await alice.PostAsJsonAsync("/api/sessions", new { title = "x" });
        var hubError = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync("CreateSession", new { title = "y" }));

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("internal_error", hubError.GatewayCode());
        Assert.Equal(2, failing!.Attempts);
        Assert.Equal(2, host.Upstream.Deleted.Count);
        Assert.DoesNotContain(host.Upstream.Deleted, host.Upstream.HasSession);
        Assert.Equal(0, JsonDocument.Parse(await (await alice.GetAsync("/api/sessions")).Content.ReadAsStringAsync())
            .RootElement.GetProperty("items").GetArrayLength());
    }

    /// <summary>A working store whose inserts fail like a lost database connection.</summary>
    private sealed class FailingInsertStore(ISessionStore inner) : ISessionStore
    {
        public int Attempts;
        public string Provider => inner.Provider;
        public Task<IReadOnlyList<int>> MigrateAsync(CancellationToken ct) => inner.MigrateAsync(ct);
        public Task PingAsync(CancellationToken ct) => inner.PingAsync(ct);

        public Task InsertAsync(SessionRecord record, CancellationToken ct)
        {
            Interlocked.Increment(ref Attempts);
            throw new Microsoft.Data.Sqlite.SqliteException("disk I/O error", 10);
        }

        public Task<SessionRecord?> GetAsync(string sessionId, CancellationToken ct) => inner.GetAsync(sessionId, ct);
        public Task<SessionPage> ListAsync(SessionQuery query, CancellationToken ct) => inner.ListAsync(query, ct);

        public Task<SessionRecord?> UpdateAsync(string sessionId, Func<SessionRecord, SessionRecord> change, CancellationToken ct) =>
            inner.UpdateAsync(sessionId, change, ct);

        public Task<bool> TryInsertChatAsync(ChatRecord chat, CancellationToken ct) => inner.TryInsertChatAsync(chat, ct);

        public Task<ChatRecord?> GetChatAsync(string ownerId, string chatId, CancellationToken ct) => inner.GetChatAsync(ownerId, chatId, ct);
    }
}
