using System.ComponentModel;
using Microsoft.Extensions.Logging;
using OpencodeGateway.Client.Internal;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>
/// A live list of the caller's sessions for one filter, in the gateway's order (latest <c>updatedAt</c> first): the first
/// page of <c>ListSessions</c>, every <c>SessionListChanged</c> applied by session id keeping the latest change (a repeat
/// or a late one changes nothing), listed again after every reconnect (changes made meanwhile are not replayed).
/// Dispose it to stop.
/// </summary>
public sealed class GatewaySessionList : INotifyPropertyChanged, IDisposable
{
    private readonly Lock _gate = new();
    private readonly GatewayClient _client;
    private readonly ChangeNotifier _notifier;
    private IReadOnlyList<SessionMetadata> _sessions = [];
    private string? _cursor;
    private int _generation;
    // Changes heard while the first page loads: applied again on top of it (it may predate them).
    private List<SessionListChange>? _heardDuringLoad;
    private GatewayException? _error;
    private bool _disposed;

    internal GatewaySessionList(GatewayClient client, ListSessionsRequest filter, SynchronizationContext? synchronizationContext, ILogger logger)
    {
        _client = client;
        Filter = filter with { Cursor = null };
        _notifier = new ChangeNotifier(this, nameof(Sessions), synchronizationContext, logger);
        client.SessionListChanged += OnChange;
        client.StateChanged += OnStateChanged;
    }

    public ListSessionsRequest Filter { get; }

    /// <summary>The sessions, latest <c>updatedAt</c> first (a new list after every change).</summary>
    public IReadOnlyList<SessionMetadata> Sessions
    {
        get
        {
            lock (_gate)
            {
                return _sessions;
            }
        }
    }

    /// <summary>More pages: <see cref="LoadMoreAsync"/>.</summary>
    public bool HasMore
    {
        get
        {
            lock (_gate)
            {
                return _cursor is not null;
            }
        }
    }

    /// <summary>Why the last (re)load failed, until one succeeds.</summary>
    public GatewayException? Error
    {
        get
        {
            lock (_gate)
            {
                return _error;
            }
        }
    }

    /// <summary>Raised (on the synchronization context given, if any) when <see cref="Sessions"/> or <see cref="Error"/> changed.</summary>
    public event EventHandler? Changed
    {
        add => _notifier.Changed += value;
        remove => _notifier.Changed -= value;
    }

    public event PropertyChangedEventHandler? PropertyChanged
    {
        add => _notifier.PropertyChanged += value;
        remove => _notifier.PropertyChanged -= value;
    }

    /// <summary>Loads the first page again (the list shown so far stays until it arrives).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken = default)
    {
        int generation;
        lock (_gate)
        {
            generation = ++_generation;
            _heardDuringLoad = [];
        }

        SessionList page;
        try
        {
            page = await _client.ListSessionsAsync(Filter, cancellationToken);
        }
        catch (GatewayException e)
        {
            Fail(generation, e);
            throw;
        }

        lock (_gate)
        {
            if (generation != _generation || _disposed)
            {
                return;
            }

            _cursor = page.NextCursor;
            IReadOnlyList<SessionMetadata> sessions = page.Items;
            foreach (var change in _heardDuringLoad ?? [])
            {
                sessions = Apply(sessions, change, Filter, partial: _cursor is not null);
            }

            _heardDuringLoad = null;
            _sessions = sessions;
            _error = null;
        }

        _notifier.Notify();
    }

    /// <summary>Appends the next page, if there is one.</summary>
    public async Task LoadMoreAsync(CancellationToken cancellationToken = default)
    {
        string? cursor;
        int generation;
        lock (_gate)
        {
            cursor = _cursor;
            generation = ++_generation;
        }

        if (cursor is null)
        {
            return;
        }

        SessionList page;
        try
        {
            page = await _client.ListSessionsAsync(Filter with { Cursor = cursor }, cancellationToken);
        }
        catch (GatewayException e)
        {
            Fail(generation, e);
            throw;
        }

        lock (_gate)
        {
            if (generation != _generation || _disposed)
            {
                return;
            }

            _cursor = page.NextCursor;
            var seen = _sessions.Select(s => s.SessionId).ToHashSet(StringComparer.Ordinal);
            _sessions = [.. _sessions, .. page.Items.Where(s => !seen.Contains(s.SessionId))];
            _error = null;
        }

        _notifier.Notify();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }

        _client.SessionListChanged -= OnChange;
        _client.StateChanged -= OnStateChanged;
    }

    /// <summary>
    /// <paramref name="sessions"/> (in the gateway's order) with <paramref name="change"/> applied: the session takes its
    /// place by its new <c>updatedAt</c>, or leaves when it no longer matches <paramref name="filter"/>; a change no newer
    /// than the one held changes nothing. With <paramref name="partial"/> (more pages to load) a session that would sort
    /// after the last one loaded is left for the next page. Returns <paramref name="sessions"/> itself when nothing changed.
    /// </summary>
    internal static IReadOnlyList<SessionMetadata> Apply(IReadOnlyList<SessionMetadata> sessions, SessionListChange change,
        ListSessionsRequest filter, bool partial)
    {
        var session = change.Session;
        var index = sessions.ToList().FindIndex(s => s.SessionId == session.SessionId);
        if (index >= 0 && sessions[index].UpdatedAt >= session.UpdatedAt)
        {
            return sessions;
        }

        var others = index >= 0 ? sessions.Where((_, i) => i != index).ToList() : [.. sessions];
        if (!Matches(session, filter))
        {
            return index >= 0 ? others : sessions;
        }

        var at = others.FindIndex(s => Order(session, s) < 0);
        if (at < 0 && partial)
        {
            return index >= 0 ? others : sessions;
        }

        others.Insert(at < 0 ? others.Count : at, session);
        return others;
    }

    /// <summary>Whether the gateway's list for <paramref name="filter"/> holds <paramref name="session"/> (ListSessions' rules).</summary>
    private static bool Matches(SessionMetadata session, ListSessionsRequest filter) =>
        session.ArchivedAt is not null == (filter.Archived ?? false)
        && (string.IsNullOrEmpty(filter.Workspace) || session.Workspace == filter.Workspace)
        && (string.IsNullOrEmpty(filter.Tag) || session.Tags.Contains(filter.Tag))
        && (string.IsNullOrEmpty(filter.Q) || (session.Title ?? "").Contains(filter.Q, StringComparison.OrdinalIgnoreCase));

    /// <summary>Negative when <paramref name="a"/> comes before <paramref name="b"/>: latest <c>updatedAt</c> first, then id descending.</summary>
    private static int Order(SessionMetadata a, SessionMetadata b)
    {
        var byTime = b.UpdatedAt.CompareTo(a.UpdatedAt);
        return byTime != 0 ? byTime : string.CompareOrdinal(b.SessionId, a.SessionId);
    }

    private void Fail(int generation, GatewayException error)
    {
        lock (_gate)
        {
            if (generation != _generation || _disposed)
            {
                return;
            }

            _heardDuringLoad = null;
            _error = error;
        }

        _notifier.Notify();
    }

    private void OnChange(object? sender, SessionListChange change)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _heardDuringLoad?.Add(change);
            var applied = Apply(_sessions, change, Filter, partial: _cursor is not null);
            if (ReferenceEquals(applied, _sessions))
            {
                return;
            }

            _sessions = applied;
        }

        _notifier.Notify();
    }

    private void OnStateChanged(object? sender, GatewayConnectionState state)
    {
        if (state == GatewayConnectionState.Connected)
        {
            // Every new connection may have missed changes.
            _ = RefreshQuietlyAsync();
        }
    }

    private async Task RefreshQuietlyAsync()
    {
        try
        {
            await RefreshAsync();
        }
        catch (GatewayException)
        {
            // Error says why; the next reconnect or RefreshAsync tries again.
        }
    }
}
