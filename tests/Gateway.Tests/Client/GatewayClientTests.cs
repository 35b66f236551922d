using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Time.Testing;
using OpencodeGateway.Client;
using OpencodeGateway.Contracts;
using static OpencodeGateway.Tests.Client.SessionEvents;

namespace OpencodeGateway.Tests.Client;

/// <summary>
/// <see cref="GatewayClient"/> over a transport the test plays the server of: joins and rejoins (with <c>since</c> after
/// a reconnect or a gap, without after a new epoch), retries, calls while disconnected, notifications.
/// </summary>
public sealed class GatewayClientTests
{
    private static HubException HubError(string method, string code, string message) =>
        new($"An unexpected error occurred invoking '{method}' on the server. HubException: {code}: {message}");

    private static SessionSnapshot OnePart(string text = "Hello", long epoch = 1, long seq = 5, int? sessionHandle = 4) =>
        Snapshot(epoch, seq, [Message("msg_1", "assistant", Text("prt_1", text))],
            handles: new Dictionary<string, IReadOnlyDictionary<string, int>> { ["prt_1"] = new Dictionary<string, int> { ["text"] = 3 } },
            sessionHandle: sessionHandle);

    /// <summary>A started client watching <see cref="Session"/>, joined with <paramref name="snapshot"/>.</summary>
    private static async Task<(GatewayClient Client, FakeTransport Transport, GatewaySession Session)> WatchingAsync(
        SessionSnapshot? snapshot = null, Action<GatewayClientOptions>? configure = null)
    {
        var (client, transport) = FakeTransport.Client(configure);
        await client.StartAsync();
        var watching = client.WatchAsync(Session);
        var join = await transport.NextCallAsync("Join");
        Assert.Equal(new JoinRequest(Session), join.Argument<JoinRequest>());
        join.Result.SetResult(Joined(snapshot ?? OnePart()));
        return (client, transport, await watching);
    }

    [Fact]
    public async Task Watching_joins_once_and_the_view_follows_the_events_with_a_change_notification_for_each()
    {
        var (client, transport, session) = await WatchingAsync();
        var changes = 0;
        session.Changed += (_, _) => changes++;

        transport.Server.OnDelta(new CompactDelta(4, 6, 3, 5, " world"));
        transport.Server.OnSessionEvent(Status(1, 7, "busy"));

        Assert.Equal("Hello world", session.View.Part("prt_1")!.Text);
        Assert.Equal("busy", session.View.StatusType);
        Assert.Equal(2, changes);
        // A second watcher shares the join; the session is left when the last one lets go.
        var again = await client.WatchAsync(Session);
        Assert.NotSame(session, again);
        Assert.Same(session.View, again.View);
        Assert.False(transport.HasCall);
        await again.DisposeAsync();
        Assert.False(transport.HasCall);
        var leaving = session.DisposeAsync().AsTask();
        var leave = await transport.NextCallAsync("Leave");
        Assert.Equal(Session, leave.Args.Single());
        leave.Result.SetResult(null);
        await leaving;
    }

    [Fact]
    public async Task After_a_reconnect_each_session_rejoins_with_since_and_ignores_deltas_of_its_old_session_handle()
    {
        var (client, transport, session) = await WatchingAsync();
        var states = new List<GatewayConnectionState>();
        client.StateChanged += (_, state) => states.Add(state);
        transport.Server.OnDelta(new CompactDelta(4, 6, 3, 5, ","));

        transport.Server.OnReconnecting(new IOException("cut"));
        transport.Server.OnReconnected();
        var rejoin = await transport.NextCallAsync("Join");
        Assert.Equal(new StreamPosition(1, 6), rejoin.Argument<JoinRequest>().Since);
        // The old connection's s means nothing now: a delta naming it while the join is in flight is left out.
        transport.Server.OnDelta(new CompactDelta(4, 7, 3, 6, " stale"));
        rejoin.Result.SetResult(Recovered(1, 7, 8, Delta(1, 7, "prt_1", 6, " you")));
        await session.WaitUntilAsync(v => v.Seq == 7).WaitAsync(TimeSpan.FromSeconds(5));
        transport.Server.OnDelta(new CompactDelta(8, 8, 3, 10, "!"));

        Assert.Equal("Hello, you!", session.View.Part("prt_1")!.Text);
        Assert.Equal([GatewayConnectionState.Reconnecting, GatewayConnectionState.Connected], states);
    }

    [Fact]
    public async Task A_gap_rejoins_with_since_and_a_new_epoch_without()
    {
        var (_, transport, session) = await WatchingAsync();
        var updates = new List<SessionUpdate>();
        session.Updated += (_, u) => updates.Add(u);

        transport.Server.OnSessionEvent(Status(1, 7, "busy"));
        var gapJoin = await transport.NextCallAsync("Join");
        Assert.Equal(new StreamPosition(1, 5), gapJoin.Argument<JoinRequest>().Since);
        gapJoin.Result.SetResult(Recovered(1, 7, 4, Status(1, 6, "retry"), Status(1, 7, "busy")));
        await session.WaitUntilAsync(v => v.Seq == 7).WaitAsync(TimeSpan.FromSeconds(5));

        transport.Server.OnSessionEvent(Event(2, 1, SessionEventTypes.EpochStarted));
        var epochJoin = await transport.NextCallAsync("Join");
        Assert.Null(epochJoin.Argument<JoinRequest>().Since);
        epochJoin.Result.SetResult(Joined(OnePart("Hello again", epoch: 2, seq: 1, sessionHandle: 5)));
        await session.WaitUntilAsync(v => v.Epoch == 2).WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal("Hello again", session.View.Part("prt_1")!.Text);
        Assert.Equal([RejoinReason.Gap, RejoinReason.Epoch], updates.Where(u => u.Kind == SessionUpdateKind.Rejoin).Select(u => u.RejoinReason!.Value));
    }

    [Fact]
    public async Task Watching_a_session_that_is_not_there_fails_with_the_gateways_code()
    {
        var (client, transport) = FakeTransport.Client();
        await client.StartAsync();

        var watching = client.WatchAsync("ses_none");
        (await transport.NextCallAsync("Join")).Result.SetException(HubError("Join", GatewayErrorCodes.SessionNotFound, "Session 'ses_none' was not found."));

        var error = await Assert.ThrowsAsync<GatewayException>(() => watching);
        Assert.Equal(GatewayErrorCodes.SessionNotFound, error.Code);
        Assert.Equal("Session 'ses_none' was not found.", error.Message);
        // Not watched any more: watching again joins again.
        _ = client.WatchAsync("ses_none");
        Assert.Null((await transport.NextCallAsync("Join")).Argument<JoinRequest>().Since);
    }

    [Fact]
    public async Task A_rejoin_that_fails_for_a_passing_reason_is_tried_again_after_a_delay_on_the_clients_clock()
    {
        var clock = new FakeTimeProvider();
        var (_, transport, session) = await WatchingAsync(configure: o => o.TimeProvider = clock);

        transport.Server.OnSessionEvent(Status(1, 7, "busy"));
        (await transport.NextCallAsync("Join")).Result.SetException(HubError("Join", GatewayErrorCodes.UpstreamUnavailable, "opencode is down"));
        await Task.Delay(50);
        Assert.False(transport.HasCall);

        clock.Advance(TimeSpan.FromSeconds(1));
        var retry = await transport.NextCallAsync("Join");
        Assert.Equal(new StreamPosition(1, 5), retry.Argument<JoinRequest>().Since);
        retry.Result.SetResult(Recovered(1, 7, 4, Status(1, 6, "retry"), Status(1, 7, "busy")));
        await session.WaitUntilAsync(v => v.Seq == 7).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Null(session.View.JoinError);
    }

    [Fact]
    public async Task A_rejoin_that_fails_for_good_says_why_in_the_view()
    {
        var (_, transport, session) = await WatchingAsync();

        transport.Server.OnSessionEvent(Status(1, 9, "busy"));
        (await transport.NextCallAsync("Join")).Result.SetException(HubError("Join", GatewayErrorCodes.SessionNotFound, "gone"));

        var view = await session.WaitUntilAsync(v => v.JoinError is not null).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(GatewayErrorCodes.SessionNotFound, view.JoinError!.Code);
        Assert.Equal(5, view.Seq);
    }

    [Fact]
    public async Task A_call_made_while_reconnecting_waits_for_the_connection_and_fails_after_the_connect_timeout()
    {
        var clock = new FakeTimeProvider();
        var (client, transport) = FakeTransport.Client(o => (o.TimeProvider, o.ConnectTimeout) = (clock, TimeSpan.FromSeconds(20)));
        await Assert.ThrowsAsync<GatewayException>(() => client.AbortAsync(Session)); // not started: at once
        await client.StartAsync();
        transport.Server.OnReconnecting(null);

        var waiting = client.PromptAsync(Session, "hi");
        clock.Advance(TimeSpan.FromSeconds(19));
        transport.Server.OnReconnected();
        var prompt = await transport.NextCallAsync("Prompt");
        Assert.Equal(new PromptRequest(Session, "hi"), prompt.Argument<PromptRequest>());
        prompt.Result.SetResult(new PromptResult(Session, Queued: false));
        Assert.False((await waiting).Queued);

        transport.Server.OnReconnecting(null);
        var late = client.AbortAsync(Session);
        clock.Advance(TimeSpan.FromSeconds(21));
        Assert.Equal(GatewayException.Disconnected, (await Assert.ThrowsAsync<GatewayException>(() => late)).Code);
    }

    [Fact]
    public async Task A_connection_closed_for_good_is_made_again_and_its_sessions_rejoin_with_since()
    {
        var (client, transport, session) = await WatchingAsync();

        transport.Server.OnClosed(new InvalidOperationException("closed by the server"));

        var rejoin = await transport.NextCallAsync("Join");
        Assert.Equal(new StreamPosition(1, 5), rejoin.Argument<JoinRequest>().Since);
        Assert.Equal(2, transport.Starts);
        Assert.Equal(GatewayConnectionState.Connected, client.State);
        _ = session;
    }

    [Fact]
    public async Task Without_automatic_reconnect_a_closed_connection_stays_down_until_started_again_which_rejoins_with_since()
    {
        var (client, transport, _) = await WatchingAsync(configure: o => o.AutomaticReconnect = false);

        transport.Server.OnClosed(new IOException("cut"));
        Assert.Equal(GatewayConnectionState.Disconnected, client.State);
        Assert.Equal(GatewayException.Disconnected, (await Assert.ThrowsAsync<GatewayException>(() => client.AbortAsync(Session))).Code);

        await client.StartAsync();
        Assert.Equal(new StreamPosition(1, 5), (await transport.NextCallAsync("Join")).Argument<JoinRequest>().Since);
    }

    [Fact]
    public async Task Earlier_messages_are_paged_into_the_view()
    {
        var snapshot = Snapshot(1, 1, [Message("msg_3", "user", Text("prt_3", "three", "msg_3"))], earlier: new EarlierMessages("c3"));
        var (_, transport, session) = await WatchingAsync(snapshot);

        var loading = session.LoadEarlierAsync(limit: 1);
        var call = await transport.NextCallAsync("LoadEarlier");
        Assert.Equal(new LoadEarlierRequest(Session, "c3", 1), call.Argument<LoadEarlierRequest>());
        call.Result.SetResult(new MessagePage([Message("msg_2", "assistant", Text("prt_2", "two", "msg_2"))], null));

        Assert.True(await loading);
        Assert.Equal(["msg_2", "msg_3"], session.View.Messages.Select(m => m.Id));
        Assert.False(await session.LoadEarlierAsync());
    }

    [Fact]
    public async Task Changes_are_posted_to_the_synchronization_context_one_pending_post_at_a_time()
    {
        var (client, transport) = FakeTransport.Client();
        await client.StartAsync();
        var context = new QueueContext();
        var watching = client.WatchAsync(Session, new WatchOptions { SynchronizationContext = context });
        (await transport.NextCallAsync("Join")).Result.SetResult(Joined(OnePart()));
        var session = await watching;
        var seen = new List<string?>();
        session.PropertyChanged += (_, e) => seen.Add($"{e.PropertyName} {session.View.Part("prt_1")!.Text}");

        transport.Server.OnDelta(new CompactDelta(4, 6, 3, 5, " a"));
        transport.Server.OnDelta(new CompactDelta(4, 7, 3, 7, " b"));
        context.RunAll();

        Assert.Equal(["View Hello a b"], seen);
    }

    [Fact]
    public void Hub_errors_keep_the_gateways_code_and_a_lost_connection_is_disconnected()
    {
        var limited = GatewayException.From(HubError("Prompt", GatewayErrorCodes.RateLimited, "Too many prompts; retry after 3 s."));
        Assert.Equal((GatewayErrorCodes.RateLimited, "Too many prompts; retry after 3 s.", false), (limited.Code, limited.Message, limited.IsTransient));
        Assert.Equal(GatewayException.Unknown, GatewayException.From(new HubException("Failed to invoke 'Join' due to an error on the server.")).Code);
        var lost = GatewayException.From(new InvalidOperationException("Invocation canceled due to the underlying connection being closed."));
        Assert.Equal((GatewayException.Disconnected, true), (lost.Code, lost.IsTransient));
    }

    [Fact]
    public void Options_name_every_setting_that_cannot_work()
    {
        var error = Assert.Throws<ArgumentException>(() => new GatewayClientOptions { ReconnectDelays = [], ConnectTimeout = TimeSpan.Zero }.Validate());
        Assert.Contains("Url is required", error.Message, StringComparison.Ordinal);
        Assert.Contains("ReconnectDelays", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectTimeout", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new GatewayClientOptions { Url = new Uri("ftp://x/hubs/session") }.Validate());
    }

    /// <summary>A UI thread's context, as far as posting goes: posts wait until the test runs them.</summary>
    private sealed class QueueContext : SynchronizationContext
    {
        private readonly Queue<(SendOrPostCallback Callback, object? State)> _posts = new();

        public override void Post(SendOrPostCallback d, object? state) => _posts.Enqueue((d, state));

        public void RunAll()
        {
            while (_posts.TryDequeue(out var post))
            {
                post.Callback(post.State);
            }
        }
    }
}
