using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.History;
using OpencodeGateway.Sequencing;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Snapshots;

/// <summary>
/// Builds a session's snapshot from opencode's REST state (fetched once per epoch, <see cref="SnapshotBaseCache"/>)
/// overlaid with the live image read after it, so the snapshot is consistent with the image's seq. The caller must
/// already receive the session's events (be in its group) before calling, so nothing falls between.
/// </summary>
internal sealed class SnapshotService(ISessionHistory history, SnapshotBaseCache bases, IOptions<SnapshotOptions> options,
    GatewayMetrics metrics)
{
    private readonly int _maxMessages = options.Value.MaxMessages;

    private const int Attempts = 3;

    public async Task<SessionSnapshot> BuildAsync(SessionKey key, SessionMetadata? metadata, CancellationToken ct)
    {
        using var activity = GatewayTelemetry.StartActivity("gateway.snapshot", key.Upstream, key.SessionId);
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 0; ; attempt++)
        {
            var head = await history.EnsureAsync(key, ct);
            var stored = await bases.GetAsync(key, head.Epoch, ct);
            var image = await history.ReadImageAsync(key, ct);
            if (image is not null && image.Epoch == head.Epoch)
            {
                var snapshot = image.ToSnapshot(stored, metadata, _maxMessages, OpencodeClient.MessageCursor);
                metrics.SnapshotBuilt(Stopwatch.GetElapsedTime(started), MessageBytes(snapshot));
                return snapshot;
            }

            // A new epoch began meanwhile: its base must be fetched within it.
            if (attempt + 1 == Attempts)
            {
                throw new GatewayException(GatewayErrorCodes.UpstreamUnavailable,
                    $"Session '{key.SessionId}' kept losing continuity with upstream '{key.Upstream}'; try again.");
            }
        }
    }

    /// <summary>
    /// The UTF-8 JSON length of the snapshot's messages and parts, read from the documents that hold them (each a
    /// slice of its parsed or serialised JSON): no serialisation, one length per element.
    /// </summary>
    private static long MessageBytes(SessionSnapshot snapshot)
    {
        long bytes = 0;
        foreach (var message in snapshot.Messages)
        {
            bytes += RawLength(message.Info);
            foreach (var part in message.Parts)
            {
                bytes += RawLength(part);
            }
        }

        return bytes;
    }

    private static int RawLength(JsonElement element) =>
        element.ValueKind == JsonValueKind.Undefined ? 0 : JsonMarshal.GetRawUtf8Value(element).Length;
}
