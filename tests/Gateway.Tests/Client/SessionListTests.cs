using OpencodeGateway.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Tests.Client;

/// <summary>
/// <see cref="GatewaySessionList"/>: <c>SessionListChanged</c> applied by session id keeping the latest change, in the
/// gateway's order and filter, and the list loaded again after a reconnect.
/// </summary>
public sealed class SessionListTests
{
    private static readonly DateTimeOffset T0 = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static SessionMetadata Meta(string id, int second, string? title = null, DateTimeOffset? archivedAt = null, params string[] tags) => new()
    {
        SessionId = id, Upstream = "local", Title = title ?? id, Tags = tags, CreatedAt = T0, UpdatedAt = T0.AddSeconds(second), ArchivedAt = archivedAt,
    };

    private static SessionListChange Change(string kind, SessionMetadata session) => new(kind, session);

    [Fact]
    public void A_change_takes_its_place_by_updated_at_and_a_repeat_or_a_late_one_changes_nothing()
    {
        IReadOnlyList<SessionMetadata> list = [Meta("ses_b", 2), Meta("ses_a", 1)];
        var filter = new ListSessionsRequest();

        var renamed = GatewaySessionList.Apply(list, Change(SessionListChangeKinds.Updated, Meta("ses_a", 3, "renamed")), filter, partial: false);
        Assert.Equal(["ses_a", "ses_b"], renamed.Select(s => s.SessionId));
        Assert.Same(renamed, GatewaySessionList.Apply(renamed, Change(SessionListChangeKinds.Updated, Meta("ses_a", 3, "renamed")), filter, false));
        Assert.Same(renamed, GatewaySessionList.Apply(renamed, Change(SessionListChangeKinds.Updated, Meta("ses_a", 2, "older")), filter, false));

        var archived = GatewaySessionList.Apply(renamed, Change(SessionListChangeKinds.Archived, Meta("ses_b", 4, archivedAt: T0.AddSeconds(4))), filter, false);
        Assert.Equal(["ses_a"], archived.Select(s => s.SessionId));
        var created = GatewaySessionList.Apply(archived, Change(SessionListChangeKinds.Created, Meta("ses_c", 5)), filter, false);
        Assert.Equal(["ses_c", "ses_a"], created.Select(s => s.SessionId));
    }

    [Fact]
    public void A_change_outside_the_filter_or_past_the_pages_loaded_stays_out()
    {
        IReadOnlyList<SessionMetadata> list = [Meta("ses_b", 5, tags: "x"), Meta("ses_a", 4, tags: "x")];

        Assert.Same(list, GatewaySessionList.Apply(list, Change(SessionListChangeKinds.Created, Meta("ses_c", 6)), new ListSessionsRequest(Tag: "x"), false));
        Assert.Equal(["ses_b"], GatewaySessionList.Apply(list, Change(SessionListChangeKinds.Updated, Meta("ses_a", 6)), new ListSessionsRequest(Tag: "x"), false)
            .Select(s => s.SessionId));
        // With more pages to load, a session older than the last one loaded belongs to a page not loaded yet.
        Assert.Same(list, GatewaySessionList.Apply(list, Change(SessionListChangeKinds.Created, Meta("ses_old", 1, tags: "x")), new ListSessionsRequest(Tag: "x"), partial: true));
    }

    [Fact]
    public async Task The_list_hears_changes_and_is_loaded_again_after_a_reconnect()
    {
        var (client, transport) = FakeTransport.Client();
        await client.StartAsync();
        var watching = client.WatchSessionListAsync();
        (await transport.NextCallAsync("ListSessions")).Result.SetResult(new SessionList([Meta("ses_a", 1)], null));
        using var list = await watching;

        transport.Server.OnSessionListChanged(Change(SessionListChangeKinds.Created, Meta("ses_b", 2)));
        Assert.Equal(["ses_b", "ses_a"], list.Sessions.Select(s => s.SessionId));

        transport.Server.OnReconnecting(null);
        transport.Server.OnReconnected();
        // Made while the connection was down, so never heard: the new list brings it.
        (await transport.NextCallAsync("ListSessions")).Result.SetResult(new SessionList([Meta("ses_c", 3), Meta("ses_b", 2), Meta("ses_a", 1)], null));
        await WaitAsync(() => list.Sessions.Count == 3);
        Assert.Equal(["ses_c", "ses_b", "ses_a"], list.Sessions.Select(s => s.SessionId));
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        for (var i = 0; i < 250 && !condition(); i++)
        {
            await Task.Delay(20);
        }

        Assert.True(condition());
    }
}
