using System.Text.Json;
using System.Text.Json.Nodes;
using OpencodeGateway.Sessions;
using OpencodeGateway.Store;
using OpencodeGateway.Upstreams;

namespace Gateway.Tests.Store;

/// <summary>
/// The behaviour every <see cref="ISessionStore"/> must have; run against real PostgreSQL and SQLite by the derived
/// classes. Each test gets a fresh, empty database.
/// </summary>
public abstract class SessionStoreSpec : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private int _ids;

    internal ISessionStore Store { get; private set; } = null!;

    /// <summary>A new store instance on the test's database (a second "process").</summary>
    internal abstract Task<ISessionStore> OpenStoreAsync();

    /// <summary>Runs a scalar query on the test's database.</summary>
    protected abstract Task<long> ScalarAsync(string sql);

    public virtual async Task InitializeAsync()
    {
        Store = await OpenStoreAsync();
        await Store.MigrateAsync(CancellationToken.None);
    }

    public virtual Task DisposeAsync() => DisposeStoreAsync(Store);

    internal static async Task DisposeStoreAsync(ISessionStore store)
    {
        switch (store)
        {
            case IAsyncDisposable d: await d.DisposeAsync(); break;
            case IDisposable d: d.Dispose(); break;
        }
    }

    private string NextId() => $"ses_t{Interlocked.Increment(ref _ids):D4}x";

    private SessionRecord Record(string owner, string? workspace = null, string? title = null, string[]? tags = null,
        string metadata = "{}", DateTimeOffset? updated = null, DateTimeOffset? archived = null, string? id = null) => new()
    {
        SessionId = id ?? NextId(),
        Upstream = "local",
        OwnerId = owner,
        Workspace = workspace,
        Title = title,
        Tags = tags ?? [],
        Metadata = metadata,
        CreatedAt = T0,
        UpdatedAt = updated ?? T0,
        ArchivedAt = archived,
    };

    private async Task<SessionRecord> InsertAsync(SessionRecord record)
    {
        await Store.InsertAsync(record, CancellationToken.None);
        return record;
    }

    private Task<SessionPage> ListAsync(SessionQuery query) => Store.ListAsync(query, CancellationToken.None);

    private static SessionQuery VisibleTo(string user, params string[] workspaces) =>
        new() { VisibleTo = user, VisibleWorkspaces = workspaces };

    [Fact]
    public async Task Migrating_again_applies_nothing_and_records_each_version_once()
    {
        var again = await Store.MigrateAsync(CancellationToken.None);

        Assert.Empty(again);
        Assert.Equal(1, await ScalarAsync("SELECT COUNT(*) FROM schema_migrations WHERE version = 1"));
        Assert.Equal(Migration.Load(Store.Provider).Count, await ScalarAsync("SELECT COUNT(*) FROM schema_migrations"));
    }

    [Fact]
    public async Task Two_processes_migrating_a_fresh_database_at_once_apply_each_migration_exactly_once()
    {
        await UseFreshDatabaseAsync();
        var stores = new List<ISessionStore>();
        for (var i = 0; i < 4; i++)
        {
            stores.Add(await OpenStoreAsync());
        }

        try
        {
            using var start = new Barrier(stores.Count);
            var runs = stores.Select(s => Task.Run(async () =>
            {
                start.SignalAndWait();
                return await s.MigrateAsync(CancellationToken.None);
            })).ToList();
            var applied = await Task.WhenAll(runs);

            var all = applied.SelectMany(a => a).ToList();
            Assert.Equal(Migration.Load(Store.Provider).Select(m => m.Version), all.Order());
            Assert.Equal(1, applied.Count(a => a.Count > 0));
            Assert.Equal(all.Count, await ScalarAsync("SELECT COUNT(*) FROM schema_migrations"));
            await stores[1].InsertAsync(Record("alice"), CancellationToken.None);
        }
        finally
        {
            foreach (var s in stores)
            {
                await DisposeStoreAsync(s);
            }
        }
    }

    /// <summary>Points the suite at a new empty database (not yet migrated).</summary>
    protected abstract Task UseFreshDatabaseAsync();

    [Fact]
    public async Task Registered_upstreams_are_added_once_listed_oldest_first_seen_by_every_process_and_removed()
    {
        var upstreams = (IUpstreamStore)Store;
        var second = new RegisteredUpstream("b-second", "http://10.0.0.2:4096/", null, null, T0.AddTicks(10));
        var first = new RegisteredUpstream("a-first", "http://10.0.0.1:4096/", "/work/sandbox é", "v1.0a1b2c3d.c2VhbGVk", T0);

        Assert.True(await upstreams.TryAddUpstreamAsync(second, CancellationToken.None));
        Assert.True(await upstreams.TryAddUpstreamAsync(first, CancellationToken.None));
        // The same row again is a retry whose first answer was lost; another row with a taken id is refused.
        Assert.True(await upstreams.TryAddUpstreamAsync(first, CancellationToken.None));
        Assert.False(await upstreams.TryAddUpstreamAsync(first with { BaseUrl = "http://10.0.0.3:4096/", CreatedAt = T0.AddDays(1) }, CancellationToken.None));

        Assert.Equal([first, second], await upstreams.ListUpstreamsAsync(CancellationToken.None));
        var other = await OpenStoreAsync();
        try
        {
            Assert.Equal([first, second], await ((IUpstreamStore)other).ListUpstreamsAsync(CancellationToken.None));
            Assert.True(await ((IUpstreamStore)other).RemoveUpstreamAsync("a-first", CancellationToken.None));
        }
        finally
        {
            await DisposeStoreAsync(other);
        }

        Assert.False(await upstreams.RemoveUpstreamAsync("a-first", CancellationToken.None));
        Assert.False(await upstreams.RemoveUpstreamAsync("never", CancellationToken.None));
        Assert.Equal([second], await upstreams.ListUpstreamsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Insert_then_get_returns_every_field()
    {
        var record = await InsertAsync(Record("alice", "ws1", "Fix the build", ["bug", "ci", "a,b \"q\""],
            """{"ticket":"GW-1","nested":{"n":1.5,"list":[1,"x",null],"ok":true}}""",
            updated: T0.AddTicks(12_340), archived: T0.AddDays(1)));

        var read = await Store.GetAsync(record.SessionId, CancellationToken.None);

        Assert.NotNull(read);
        Assert.Equal(record.SessionId, read.SessionId);
        Assert.Equal("local", read.Upstream);
        Assert.Equal("alice", read.OwnerId);
        Assert.Equal("ws1", read.Workspace);
        Assert.Equal("Fix the build", read.Title);
        Assert.Equal(["bug", "ci", "a,b \"q\""], read.Tags);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(record.Metadata), JsonNode.Parse(read.Metadata)), read.Metadata);
        Assert.Equal(T0, read.CreatedAt);
        Assert.Equal(T0.AddTicks(12_340), read.UpdatedAt);
        Assert.Equal(T0.AddDays(1), read.ArchivedAt);
        Assert.Equal(1, read.Version);
    }

    [Fact]
    public async Task Chat_ids_map_to_sessions_per_owner_and_the_first_mapping_wins()
    {
        var first = await InsertAsync(Record("alice"));
        var second = await InsertAsync(Record("alice"));
        var bobs = await InsertAsync(Record("bob"));
        var chat = new ChatRecord("alice", "chat-1", first.SessionId, T0.AddTicks(1_230));

        Assert.True(await Store.TryInsertChatAsync(chat, CancellationToken.None));
        Assert.False(await Store.TryInsertChatAsync(chat with { SessionId = second.SessionId }, CancellationToken.None));
        Assert.True(await Store.TryInsertChatAsync(new ChatRecord("bob", "chat-1", bobs.SessionId, T0), CancellationToken.None));

        Assert.Equal(chat, await Store.GetChatAsync("alice", "chat-1", CancellationToken.None));
        Assert.Equal(bobs.SessionId, (await Store.GetChatAsync("bob", "chat-1", CancellationToken.None))!.SessionId);
        Assert.Null(await Store.GetChatAsync("alice", "chat-2", CancellationToken.None));
        Assert.Null(await Store.GetChatAsync("carol", "chat-1", CancellationToken.None));
    }

    [Fact]
    public async Task A_chat_cannot_point_at_a_session_without_a_record()
    {
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() =>
            Store.TryInsertChatAsync(new ChatRecord("alice", "chat-1", "ses_norecord", T0), CancellationToken.None));
        Assert.Null(await Store.GetChatAsync("alice", "chat-1", CancellationToken.None));
    }

    [Fact]
    public async Task An_insert_run_again_after_its_answer_was_lost_succeeds_once()
    {
        // What a retry after a lost answer does: the same record again. It is recognised as the one that landed.
        var record = await InsertAsync(Record("alice", tags: ["a"]));
        await Store.InsertAsync(record, CancellationToken.None);
        Assert.Equal(1, await ScalarAsync($"SELECT COUNT(*) FROM sessions WHERE id = '{record.SessionId}'"));
        await Assert.ThrowsAsync<SessionExistsException>(() => Store.InsertAsync(record with { CreatedAt = T0.AddTicks(10) }, CancellationToken.None));
    }

    [Fact]
    public async Task Get_of_an_unknown_id_is_null_and_a_duplicate_insert_is_refused()
    {
        var record = await InsertAsync(Record("alice"));

        Assert.Null(await Store.GetAsync("ses_unknown", CancellationToken.None));
        await Assert.ThrowsAsync<SessionExistsException>(() => Store.InsertAsync(record with { OwnerId = "mallory" }, CancellationToken.None));
        Assert.Equal("alice", (await Store.GetAsync(record.SessionId, CancellationToken.None))!.OwnerId);
    }

    [Fact]
    public async Task List_shows_own_and_workspace_sessions_only_and_everything_without_visibility_filter()
    {
        var mine = await InsertAsync(Record("alice", updated: T0.AddMinutes(1)));
        var shared = await InsertAsync(Record("bob", "team", updated: T0.AddMinutes(2)));
        var bobs = await InsertAsync(Record("bob", updated: T0.AddMinutes(3)));
        var other = await InsertAsync(Record("carol", "other", updated: T0.AddMinutes(4)));

        Assert.Equal([mine.SessionId], Ids(await ListAsync(VisibleTo("alice"))));
        Assert.Equal([shared.SessionId, mine.SessionId], Ids(await ListAsync(VisibleTo("alice", "team"))));
        Assert.Equal([bobs.SessionId, shared.SessionId], Ids(await ListAsync(VisibleTo("bob"))));
        Assert.Empty(Ids(await ListAsync(VisibleTo("dave", "nope"))));
        Assert.Equal([other.SessionId, bobs.SessionId, shared.SessionId, mine.SessionId], Ids(await ListAsync(new SessionQuery())));
    }

    [Fact]
    public async Task List_filters_by_workspace_tag_archived_and_title()
    {
        var a = await InsertAsync(Record("alice", "w1", "Refactor PARSER", ["x", "y"], updated: T0.AddMinutes(1)));
        var b = await InsertAsync(Record("alice", "w2", "parser tests", ["y"], updated: T0.AddMinutes(2)));
        var c = await InsertAsync(Record("alice", "w1", "100% done_now", ["z"], updated: T0.AddMinutes(3)));
        var d = await InsertAsync(Record("alice", "w1", "archived parser", ["x"], updated: T0.AddMinutes(4), archived: T0.AddMinutes(5)));
        var me = VisibleTo("alice");

        Assert.Equal([c.SessionId, a.SessionId], Ids(await ListAsync(me with { Workspace = "w1" })));
        Assert.Equal([a.SessionId], Ids(await ListAsync(me with { Tag = "x" })));
        Assert.Equal([b.SessionId, a.SessionId], Ids(await ListAsync(me with { Tag = "y" })));
        Assert.Equal([a.SessionId], Ids(await ListAsync(me with { Workspace = "w1", Tag = "x" })));
        Assert.Equal([d.SessionId], Ids(await ListAsync(me with { Archived = true })));
        Assert.Equal([d.SessionId, c.SessionId, b.SessionId, a.SessionId], Ids(await ListAsync(me with { Archived = null })));
        Assert.Equal([b.SessionId, a.SessionId], Ids(await ListAsync(me with { TitleContains = "parser" })));
        Assert.Equal([d.SessionId, b.SessionId, a.SessionId], Ids(await ListAsync(me with { TitleContains = "Parser", Archived = null })));
        // LIKE wildcards in the search text are literal.
        Assert.Equal([c.SessionId], Ids(await ListAsync(me with { TitleContains = "0% d" })));
        Assert.Equal([c.SessionId], Ids(await ListAsync(me with { TitleContains = "done_" })));
        Assert.Empty(Ids(await ListAsync(me with { TitleContains = "_arser" })));
        Assert.Empty(Ids(await ListAsync(me with { Tag = "nope" })));
    }

    [Fact]
    public async Task Cursor_pages_walk_every_row_once_newest_first_even_with_equal_timestamps()
    {
        var expected = new List<SessionRecord>();
        for (var i = 0; i < 23; i++)
        {
            // groups of three share one updated_at: the id breaks the tie
            expected.Add(await InsertAsync(Record("alice", updated: T0.AddSeconds(i / 3))));
        }

        await InsertAsync(Record("bob", updated: T0.AddSeconds(4))); // not visible to alice
        var order = expected.OrderByDescending(r => r.UpdatedAt).ThenByDescending(r => r.SessionId, StringComparer.Ordinal)
            .Select(r => r.SessionId).ToList();

        var seen = new List<string>();
        var pages = 0;
        SessionCursor? cursor = null;
        do
        {
            var page = await ListAsync(VisibleTo("alice") with { Limit = 10, After = cursor });
            pages++;
            seen.AddRange(Ids(page));
            Assert.True(page.Items.Count <= 10);
            if (page.Next is not null)
            {
                Assert.True(SessionCursor.TryDecode(page.Next.Encode(), out var decoded));
                cursor = decoded;
            }
            else
            {
                cursor = null;
            }
        }
        while (cursor is not null);

        Assert.Equal(3, pages);
        Assert.Equal(order, seen);
    }

    [Fact]
    public async Task Update_applies_merge_patch_rules_replaces_tags_and_bumps_the_version()
    {
        var record = await InsertAsync(Record("alice", tags: ["old"],
            metadata: """{"keep":1,"drop":"x","nested":{"a":1,"b":{"c":2}},"list":[1,2]}"""));
        var patch = JsonDocument.Parse("""{"drop":null,"nested":{"b":{"c":null,"d":3},"e":"new"},"list":[3],"added":{"z":null}}""").RootElement;

        var updated = await Store.UpdateAsync(record.SessionId, r => r with
        {
            Metadata = SessionRules.ApplyMergePatch(r.Metadata, patch),
            Tags = ["new", "tags"],
            UpdatedAt = T0.AddMinutes(1),
        }, CancellationToken.None);

        Assert.NotNull(updated);
        Assert.Equal(2, updated.Version);
        var read = (await Store.GetAsync(record.SessionId, CancellationToken.None))!;
        Assert.Equal(2, read.Version);
        Assert.Equal(["new", "tags"], read.Tags);
        Assert.Equal(T0.AddMinutes(1), read.UpdatedAt);
        Assert.True(JsonNode.DeepEquals(
            JsonNode.Parse("""{"keep":1,"nested":{"a":1,"b":{"d":3},"e":"new"},"list":[3],"added":{}}"""),
            JsonNode.Parse(read.Metadata)), read.Metadata);
        // the tag index follows the new list
        Assert.Empty(Ids(await ListAsync(VisibleTo("alice") with { Tag = "old" })));
        Assert.Equal([record.SessionId], Ids(await ListAsync(VisibleTo("alice") with { Tag = "tags" })));
        Assert.Null(await Store.UpdateAsync("ses_missing", r => r, CancellationToken.None));
    }

    [Fact]
    public async Task Concurrent_updates_of_one_row_all_take_effect()
    {
        var record = await InsertAsync(Record("alice"));
        const int writers = 12;

        await Task.WhenAll(Enumerable.Range(0, writers).Select(i => Task.Run(() => Store.UpdateAsync(record.SessionId, r => r with
        {
            Metadata = SessionRules.ApplyMergePatch(r.Metadata, JsonDocument.Parse($$"""{"k{{i}}":{{i}}}""").RootElement),
            Tags = [.. r.Tags, $"t{i}"],
        }, CancellationToken.None))));

        var read = (await Store.GetAsync(record.SessionId, CancellationToken.None))!;
        var metadata = JsonNode.Parse(read.Metadata)!.AsObject();
        Assert.Equal(writers, metadata.Count);
        Assert.Equal(writers, read.Tags.Count);
        Assert.Equal(1 + writers, read.Version);
    }

    [Fact]
    public async Task Archiving_moves_a_session_from_the_active_list_to_the_archived_list()
    {
        var record = await InsertAsync(Record("alice", "w"));
        Assert.Equal([record.SessionId], Ids(await ListAsync(VisibleTo("alice"))));

        await Store.UpdateAsync(record.SessionId, r => r with { ArchivedAt = T0.AddHours(1), UpdatedAt = T0.AddHours(1) }, CancellationToken.None);

        Assert.Empty(Ids(await ListAsync(VisibleTo("alice"))));
        Assert.Equal([record.SessionId], Ids(await ListAsync(VisibleTo("alice") with { Archived = true })));
        Assert.Equal(T0.AddHours(1), (await Store.GetAsync(record.SessionId, CancellationToken.None))!.ArchivedAt);
    }

    private static List<string> Ids(SessionPage page) => [.. page.Items.Select(i => i.SessionId)];
}
