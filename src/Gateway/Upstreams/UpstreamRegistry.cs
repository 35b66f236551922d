using Microsoft.Extensions.Options;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Upstreams;

/// <summary>The configured upstreams and their REST clients.</summary>
public sealed class UpstreamRegistry
{
    private readonly Dictionary<string, OpencodeClient> _clients = new(StringComparer.Ordinal);

    public UpstreamRegistry(IOptions<UpstreamsOptions> options, IHttpClientFactory httpClients)
    {
        foreach (var upstream in options.Value.Upstreams)
        {
            _clients[upstream.Id] = new OpencodeClient(upstream, httpClients);
        }

        Default = _clients[options.Value.Upstreams[0].Id];
    }

    public IReadOnlyCollection<OpencodeClient> All => _clients.Values;

    /// <summary>The first configured upstream: where sessions are created unless a caller names another.</summary>
    public OpencodeClient Default { get; }

    public OpencodeClient Get(string upstreamId) =>
        _clients.TryGetValue(upstreamId, out var client)
            ? client
            : throw new GatewayException(GatewayErrorCodes.BadRequest, $"Unknown upstream '{upstreamId}'.");

    public bool TryGet(string upstreamId, out OpencodeClient client) => _clients.TryGetValue(upstreamId, out client!);
}
