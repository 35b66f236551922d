using Microsoft.AspNetCore.SignalR;
using System.Text.Json;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Testing;

/// <summary>
/// A gateway client that watches one session the way a real client must: join (with <c>since</c> when it has a
/// position), buffer events and compact deltas that arrive before the join's result, apply snapshot/recovered events
/// then the buffer, rejoin on a gap (with since) or a new epoch (without), and take pushed snapshots of a newer epoch.
/// Any event form and protocol (<see cref="GatewayHubClientOptions.Events"/>, <see cref="GatewayHubClientOptions.MessagePack"/>).
/// </summary>
public sealed class SessionWatcher : IAsyncDisposable
{
    private readonly Lock _gate = new();
    // Events (JsonElement) and compact deltas (CompactDelta), in arrival order.
    private readonly List<object> _buffer = [];
    private bool _joining;
    private int _rejoinPending;

    private SessionWatcher(GatewayHubClient connection, string sessionId, SessionModel model)
    {
        Connection = connection;
        SessionId = sessionId;
        Model = model;
    }

    public GatewayHubClient Connection { get; }
    public string SessionId { get; }
    public SessionModel Model { get; }
    public int Snapshots { get; private set; }
    public int Recoveries { get; private set; }
    public int Duplicates { get; private set; }
    public int PushedSnapshots { get; private set; }
    /// <summary>Times the connection came back by itself (automatic reconnect).</summary>
    public int Reconnects { get; private set; }
    /// <summary>Events of an epoch this watcher had no snapshot of yet (the gateway must push the snapshot first).</summary>
    public int EventsBeforeTheirEpochSnapshot { get; private set; }
    public int EventsApplied { get; private set; }
    /// <summary>Compact deltas of a session handle the watcher did not hold (an epoch it had left or not reached).</summary>
    public int CompactIgnored { get; private set; }
    public List<string> EventTypes { get; } = [];
    /// <summary>The (epoch, seq) of every event applied, in order.</summary>
    public List<(long Epoch, long Seq)> AppliedPositions { get; } = [];
    public List<string> Failures { get; } = [];
    public DateTimeOffset? IdleAt { get; private set; }

    /// <summary>
    /// Events (JSON) and compact deltas for which this returns true are dropped on arrival, as if lost on the way: what
    /// follows them must show the hole.
    /// </summary>
    public Func<object, bool>? LoseOnTheWay { get; set; }

    /// <summary>
    /// Connects (as "alice" unless <paramref name="options"/> say otherwise) and joins; with <paramref name="model"/>
    /// from an earlier connection it rejoins with <c>since</c>.
    /// </summary>
    public static async Task<SessionWatcher> StartAsync(Uri hubUrl, string sessionId, SessionModel? model = null,
        GatewayHubClientOptions? options = null, CancellationToken ct = default)
    {
        // The watcher applies events as they come; nothing is kept for NextAsync.
        var connection = await GatewayHubClient.ConnectAsync(hubUrl, (options ?? GatewayHost.As()) with { RecordEvents = false }, ct);
        var watcher = new SessionWatcher(connection, sessionId, model ?? new SessionModel());
        connection.OnSessionEvent(evt => watcher.OnEvent(evt));
        connection.OnCompactDelta(delta => watcher.OnEvent(delta));
        connection.OnSessionSnapshot(watcher.OnSnapshot);
        // Client rule 6: after a reconnect (to whichever node), rejoin with since.
        connection.Connection.Reconnected += _ =>
        {
            lock (watcher._gate)
            {
                watcher.Reconnects++;
            }

            watcher.Rejoin(useSince: true);
            return Task.CompletedTask;
        };
        await watcher.JoinAsync(useSince: model is { HasSnapshot: true }, ct);
        return watcher;
    }

    public async Task JoinAsync(bool useSince, CancellationToken ct = default)
    {
        lock (_gate)
        {
            _joining = true;
        }

        var request = new JoinRequest(SessionId, Since: useSince ? new StreamPosition(Model.Epoch, Model.Seq) : null);
        JsonElement result;
        try
        {
            result = await Connection.JoinAsync(request).WaitAsync(ct);
        }
        catch
        {
            lock (_gate)
            {
                _joining = false;
                _buffer.Clear();
            }

            throw;
        }

        lock (_gate)
        {
            if (result.GetProperty("recovered").GetBoolean())
            {
                Model.ApplyRecovered(result);
                Recoveries++;
            }
            else
            {
                Model.ApplySnapshot(result.GetProperty("snapshot"));
                Snapshots++;
            }

            _joining = false;
            var buffered = _buffer.ToList();
            _buffer.Clear();
            foreach (var evt in buffered)
            {
                ApplyLocked(evt);
            }
        }
    }

    /// <summary>A <c>SessionEvent</c> (JSON) or a <see cref="CompactDelta"/>.</summary>
    private void OnEvent(object evt)
    {
        lock (_gate)
        {
            if (LoseOnTheWay?.Invoke(evt) == true)
            {
                return;
            }

            if (_joining || !Model.HasSnapshot)
            {
                _buffer.Add(evt);
                return;
            }

            ApplyLocked(evt);
        }
    }

    private void OnSnapshot(JsonElement snapshot)
    {
        lock (_gate)
        {
            var epoch = snapshot.GetProperty("epoch").GetInt64();
            var seq = snapshot.GetProperty("seq").GetInt64();
            if (epoch > Model.Epoch || (epoch == Model.Epoch && seq > Model.Seq))
            {
                Model.ApplySnapshot(snapshot);
                PushedSnapshots++;
            }
        }
    }

    private void ApplyLocked(object item)
    {
        var outcome = item is CompactDelta compact ? Model.ApplyCompact(compact) : Model.Apply((JsonElement)item);
        switch (outcome)
        {
            case SessionModel.Outcome.Applied:
                EventsApplied++;
                AppliedPositions.Add((Model.Epoch, Model.Seq));
                var type = item is JsonElement evt ? evt.GetProperty("type").GetString()! : "part.delta";
                EventTypes.Add(type);
                if (type == "status" && Model.StatusType == "idle")
                {
                    IdleAt = DateTimeOffset.UtcNow;
                }

                break;
            case SessionModel.Outcome.Duplicate:
                Duplicates++;
                break;
            case SessionModel.Outcome.OtherSession:
                CompactIgnored++;
                break;
            case SessionModel.Outcome.Gap:
                Rejoin(useSince: true);
                break;
            case SessionModel.Outcome.NewEpoch:
                // A snapshot of the new epoch is pushed first; rejoin in case it was not (or was lost).
                EventsBeforeTheirEpochSnapshot++;
                Rejoin(useSince: false);
                break;
        }
    }

    private void Rejoin(bool useSince)
    {
        if (Interlocked.Exchange(ref _rejoinPending, 1) == 1)
        {
            return;
        }

        _joining = true;
        _ = Task.Run(async () =>
        {
            // As an app's client does: a rejoin that fails for a passing reason (a node starting or stopping, Redis
            // back in a moment) is tried again; only one that keeps failing for 20 s is a failure.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            try
            {
                while (true)
                {
                    try
                    {
                        await JoinAsync(useSince);
                        return;
                    }
                    catch (Exception e) when (DateTime.UtcNow < deadline && IsPassing(e))
                    {
                        lock (_gate)
                        {
                            _joining = true;
                        }

                        await Task.Delay(250);
                    }
                    catch (Exception e)
                    {
                        lock (_gate)
                        {
                            Failures.Add($"rejoin failed: {e.Message}");
                        }

                        return;
                    }
                }
            }
            finally
            {
                Interlocked.Exchange(ref _rejoinPending, 0);
            }
        });
    }

    private static bool IsPassing(Exception e) =>
        e is not HubException hub || hub.GatewayCode() is "upstream_unavailable" or "internal_error" or "cancelled";

    /// <summary>Waits until <paramref name="condition"/> holds for the model (checked under the watcher's lock).</summary>
    public async Task WaitUntilAsync(Func<SessionWatcher, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            lock (_gate)
            {
                if (condition(this))
                {
                    return;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: not reached within {timeout.TotalSeconds} s (status {Model.StatusType}, epoch {Model.Epoch}, "
                    + $"seq {Model.Seq}, session handle {Model.SessionHandle}, compact deltas ignored {CompactIgnored}, "
                    + $"events applied {EventsApplied}, snapshots {Snapshots} (pushed {PushedSnapshots}), recoveries {Recoveries}, "
                    + $"reconnects {Reconnects}, buffered {_buffer.Count}, joining {_joining}, failures: {string.Join("; ", Failures)})");
            }

            if (Connection.IsClosed)
            {
                throw new InvalidOperationException($"{what}: connection closed ({(await Connection.Closed)?.Message ?? "cleanly"})");
            }

            await Task.Delay(20);
        }
    }

    public T Read<T>(Func<SessionWatcher, T> read)
    {
        lock (_gate)
        {
            return read(this);
        }
    }

    public ValueTask DisposeAsync() => Connection.DisposeAsync();
}
