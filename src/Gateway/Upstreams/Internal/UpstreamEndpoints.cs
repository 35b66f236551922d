using System.Collections.Concurrent;
using Polly;

namespace OpencodeGateway.Upstreams.Internal;

/// <summary>
/// What each named client of the registry's upstreams is built with, by client name: written by the
/// <see cref="UpstreamRegistry"/>, read by <see cref="UpstreamHttpClientSetup"/> when the factory first builds a name. A
/// map of its own so that the client factory, which the registry uses, does not depend on the registry.
/// </summary>
internal sealed class UpstreamEndpoints
{
    private readonly ConcurrentDictionary<string, Endpoint> _byName = new(StringComparer.Ordinal);

    /// <param name="RestPipeline">The REST client's retries and circuit breaker; null for the event-stream client.</param>
    public sealed record Endpoint(UpstreamOptions Upstream, ResiliencePipeline<HttpResponseMessage>? RestPipeline);

    public void Add(string name, Endpoint endpoint) => _byName[name] = endpoint;

    public void Remove(string name) => _byName.TryRemove(name, out _);

    public bool TryGet(string name, out Endpoint endpoint) => _byName.TryGetValue(name, out endpoint!);
}
