using System.ComponentModel;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>
/// A session a <see cref="GatewayClient"/> watches: its live <see cref="View"/> (kept by the client rules through
/// reconnects and rejoins), notifications of each change, and the session's calls. Every
/// <see cref="GatewayClient.WatchAsync"/> gives its own; they share one join. Dispose it to stop watching: the session
/// is left when the last one of it is disposed.
/// </summary>
public sealed class GatewaySession : INotifyPropertyChanged, IAsyncDisposable
{
    private readonly ChangeNotifier _notifier;
    private SessionView? _notified;
    private int _disposed;

    internal GatewaySession(GatewayClient client, WatchedSession watched, WatchOptions options)
    {
        Client = client;
        Watched = watched;
        _notifier = new ChangeNotifier(this, nameof(View), options.SynchronizationContext, watched.Logger);
        _notified = watched.State.View;
        Updated += options.Updated;
    }

    public GatewayClient Client { get; }

    public string SessionId => Watched.SessionId;

    /// <summary>The session as the client holds it now (a new object after every change). Read it from any thread.</summary>
    public SessionView View => Watched.State.View;

    /// <summary>
    /// Every item the client handles for this session (each event, delta, snapshot, duplicate, rejoin), in order,
    /// synchronously before the next one, with the view before and after: the place for checks at every event. Raised
    /// while the client holds its lock: keep handlers short and do not wait in them on the client.
    /// </summary>
    public event EventHandler<SessionUpdate>? Updated;

    /// <summary>
    /// The view changed (at most once per message the gateway sent; coalesced on
    /// <see cref="WatchOptions.SynchronizationContext"/> when one is given): read <see cref="View"/>.
    /// </summary>
    public event EventHandler? Changed
    {
        add => _notifier.Changed += value;
        remove => _notifier.Changed -= value;
    }

    /// <summary><see cref="View"/> changed, for data binding (raised with <see cref="Changed"/>).</summary>
    public event PropertyChangedEventHandler? PropertyChanged
    {
        add => _notifier.PropertyChanged += value;
        remove => _notifier.PropertyChanged -= value;
    }

    internal WatchedSession Watched { get; }

    public Task<PromptResult> PromptAsync(string text, CancellationToken cancellationToken = default) =>
        Client.PromptAsync(new PromptRequest(SessionId, text), cancellationToken);

    /// <summary>A prompt of parts: text, and attachments (<c>file</c> parts with a <c>data:</c> URL).</summary>
    public Task<PromptResult> PromptAsync(IReadOnlyList<PromptPart> parts, string? agent = null, string? model = null,
        CancellationToken cancellationToken = default) =>
        Client.PromptAsync(new PromptRequest(SessionId, Parts: parts, Agent: agent, Model: model), cancellationToken);

    public Task AbortAsync(CancellationToken cancellationToken = default) => Client.AbortAsync(SessionId, cancellationToken);

    /// <summary>Answers a permission request of the session or of a descendant (<c>once</c>, <c>always</c>, <c>reject</c>).</summary>
    public Task ReplyPermissionAsync(string requestId, string reply, string? message = null, CancellationToken cancellationToken = default) =>
        Client.ReplyPermissionAsync(new PermissionReplyRequest(SessionId, requestId, reply, message), cancellationToken);

    /// <summary>Answers a question of the session or of a descendant: one array of chosen labels (or typed text) per question.</summary>
    public Task ReplyQuestionAsync(string requestId, IReadOnlyList<IReadOnlyList<string>> answers, CancellationToken cancellationToken = default) =>
        Client.ReplyQuestionAsync(new QuestionReplyRequest(SessionId, requestId, answers), cancellationToken);

    /// <summary>Dismisses a question: its tool call ends with an error and the run goes on.</summary>
    public Task RejectQuestionAsync(string requestId, CancellationToken cancellationToken = default) =>
        Client.RejectQuestionAsync(new QuestionRejectRequest(SessionId, requestId), cancellationToken);

    /// <summary>
    /// Pages the messages before the view's first one in (<c>LoadEarlier</c> from <see cref="SessionView.Earlier"/>;
    /// <paramref name="limit"/> 1–100, default the gateway's page size). True when it added a page; false when there was
    /// nothing to load or a new snapshot replaced the view meanwhile (call it again). A second call for the same cursor
    /// shares the first.
    /// </summary>
    public Task<bool> LoadEarlierAsync(int? limit = null, CancellationToken cancellationToken = default) =>
        Client.LoadEarlierAsync(Watched, limit, cancellationToken);

    /// <summary>Completes with the first view for which <paramref name="condition"/> holds (checked now and after every update).</summary>
    public async Task<SessionView> WaitUntilAsync(Func<SessionView, bool> condition, CancellationToken cancellationToken = default)
    {
        var reached = new TaskCompletionSource<SessionView>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(object? sender, SessionUpdate update)
        {
            if (condition(update.View))
            {
                reached.TrySetResult(update.View);
            }
        }

        Updated += Check;
        try
        {
            return View is var now && condition(now) ? now : await reached.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            Updated -= Check;
        }
    }

    /// <summary>Stops watching (the session is left when no other <see cref="GatewaySession"/> of it watches).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await Client.ReleaseAsync(this, leave: true);
        }
    }

    /// <summary>Called by the client after it let go of its lock: raises <see cref="Changed"/> when the view changed.</summary>
    internal void FlushChanged()
    {
        var view = View;
        if (!ReferenceEquals(Interlocked.Exchange(ref _notified, view), view))
        {
            _notifier.Notify();
        }
    }

    internal void RaiseUpdated(SessionUpdate update)
    {
        try
        {
            Updated?.Invoke(this, update);
        }
        catch (Exception e)
        {
            ClientLog.HandlerFailed(Watched.Logger, nameof(Updated), e);
        }
    }
}
