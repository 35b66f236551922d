using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Sessions.Live;

/// <summary>
/// Builds a session's snapshot: opencode's stored state (REST), overlaid under the session lock with what this epoch's
/// events changed, so it is consistent with the session's current seq and includes in-flight text.
/// The caller must already receive the session's events (be in its group) before calling, so nothing falls between.
/// </summary>
internal sealed class SnapshotBuilder(LiveSessionRegistry registry)
{
    private static readonly JsonElement Idle = JsonDocument.Parse("""{"type":"idle"}""").RootElement.Clone();

    public async Task<SessionSnapshot> BuildAsync(OpencodeClient client, string sessionId, SessionMetadata? metadata, CancellationToken ct)
    {
        using var activity = GatewayTelemetry.StartActivity("gateway.snapshot", client.UpstreamId, sessionId);
        var infoTask = client.GetSessionAsync(sessionId, ct);
        var messagesTask = client.GetMessagesAsync(sessionId, ct);
        var todosTask = client.GetTodosAsync(sessionId, ct);
        var info = await infoTask;
        var directory = info.TryGetProperty("directory", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        var statusTask = client.GetStatusMapAsync(directory, ct);
        var permissionsTask = client.GetPendingPermissionsAsync(directory, ct);
        var messages = await messagesTask;
        var statusMap = await statusTask;
        var permissions = await permissionsTask;
        JsonElement? todos;
        try
        {
            todos = await todosTask;
        }
        catch (GatewayException e) when (e.Code != GatewayErrorCodes.UpstreamUnavailable)
        {
            todos = null; // older opencode releases have no todo endpoint (404, or their web UI's HTML)
        }

        var storedStatus = statusMap.ValueKind == JsonValueKind.Object && statusMap.TryGetProperty(sessionId, out var s) ? s : Idle;
        var storedPermissions = permissions.ValueKind == JsonValueKind.Array
            ? permissions.EnumerateArray().Where(p => p.TryGetProperty("sessionID", out var id) && id.ValueEquals(sessionId))
            : [];

        return registry.Use(client.UpstreamId, sessionId, live => new SessionSnapshot
        {
            Upstream = client.UpstreamId,
            SessionId = sessionId,
            Epoch = live.Epoch,
            Seq = live.Seq,
            Session = live.SessionInfo ?? info,
            Messages = live.Merge(messages),
            Status = live.Status ?? storedStatus,
            Permissions = live.MergePermissions(storedPermissions),
            Todos = live.Todos ?? (todos is { ValueKind: JsonValueKind.Array } ? todos : null),
            Metadata = metadata,
        });
    }
}
