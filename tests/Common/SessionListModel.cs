using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>
/// A client's live sessions list, kept by the documented rule of <c>SessionListChanged</c>: apply by session id, keep
/// the change with the latest <c>updatedAt</c>; a repeat (the same change heard as owner and as member) changes nothing.
/// Checks at every change it hears that a change it drops as older is really older, and keeps every change in order.
/// </summary>
public sealed class SessionListModel
{
    private readonly object _gate = new();
    private readonly Dictionary<string, (string Kind, DateTimeOffset UpdatedAt, JsonElement Session)> _sessions = new(StringComparer.Ordinal);
    private readonly List<(string Kind, string SessionId)> _heard = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SessionListModel(GatewayHubClient client) =>
        client.Connection.On<JsonElement>(nameof(ISessionClient.SessionListChanged), Apply);

    /// <summary>Starts keeping <paramref name="client"/>'s list (before anything it should hear happens).</summary>
    public static SessionListModel Of(GatewayHubClient client) => new(client);

    /// <summary>Every change heard, in order (repeats included).</summary>
    public IReadOnlyList<(string Kind, string SessionId)> Heard
    {
        get
        {
            lock (_gate)
            {
                return [.. _heard];
            }
        }
    }

    /// <summary>The latest change of the session, or null when none was heard.</summary>
    public (string Kind, JsonElement Session)? this[string sessionId]
    {
        get
        {
            lock (_gate)
            {
                return _sessions.TryGetValue(sessionId, out var s) ? (s.Kind, s.Session) : null;
            }
        }
    }

    private void Apply(JsonElement change)
    {
        var kind = change.GetProperty("kind").GetString()!;
        var session = change.GetProperty("session").Clone();
        var id = session.GetProperty("sessionId").GetString()!;
        var updatedAt = session.GetProperty("updatedAt").GetDateTimeOffset();
        lock (_gate)
        {
            _heard.Add((kind, id));
            if (!_sessions.TryGetValue(id, out var known) || updatedAt > known.UpdatedAt)
            {
                _sessions[id] = (kind, updatedAt, session);
            }
            else if (updatedAt == known.UpdatedAt && (kind != known.Kind || session.ToString() != known.Session.ToString()))
            {
                throw new InvalidOperationException($"two different changes of {id} at {updatedAt:O}: {known.Kind} and {kind}");
            }

            _changed.TrySetResult();
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>Waits until the session's latest change satisfies <paramref name="condition"/>.</summary>
    public async Task<JsonElement> WaitForAsync(string sessionId, Func<string, JsonElement, bool> condition, TimeSpan timeout, string what)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_sessions.TryGetValue(sessionId, out var s) && condition(s.Kind, s.Session))
                {
                    return s.Session;
                }

                changed = _changed.Task;
            }

            try
            {
                await changed.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{what}: not heard within {timeout.TotalSeconds} s (heard: {string.Join(", ", Heard)})");
            }
        }
    }
}
