using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Sessions.History;
using OpencodeGateway.Sessions.Live;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Sessions.Snapshots;

/// <summary>
/// Builds a session's snapshot from opencode's REST state (fetched once per epoch, <see cref="SnapshotBaseCache"/>)
/// overlaid with the live image read after it, so the snapshot is consistent with the image's seq. The caller must
/// already receive the session's events (be in its group) before calling, so nothing falls between.
/// </summary>
internal sealed class SnapshotService(ISessionHistory history, SnapshotBaseCache bases, IOptions<SnapshotOptions> options)
{
    private readonly int _maxMessages = options.Value.MaxMessages;

    private const int Attempts = 3;

    public async Task<SessionSnapshot> BuildAsync(SessionKey key, SessionMetadata? metadata, CancellationToken ct)
    {
        using var activity = GatewayTelemetry.StartActivity("gateway.snapshot", key.Upstream, key.SessionId);
        for (var attempt = 0; ; attempt++)
        {
            var head = await history.EnsureAsync(key, ct);
            var stored = await bases.GetAsync(key, head.Epoch, ct);
            var image = await history.ReadImageAsync(key, ct);
            if (image is not null && image.Epoch == head.Epoch)
            {
                return image.ToSnapshot(stored, metadata, _maxMessages, OpencodeClient.MessageCursor);
            }

            // A new epoch began meanwhile: its base must be fetched within it.
            if (attempt + 1 == Attempts)
            {
                throw new GatewayException(GatewayErrorCodes.UpstreamUnavailable,
                    $"Session '{key.SessionId}' kept losing continuity with upstream '{key.Upstream}'; try again.");
            }
        }
    }
}
