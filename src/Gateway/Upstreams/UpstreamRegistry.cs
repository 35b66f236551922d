using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using OpencodeGateway.Upstreams.Internal;
using Polly;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Upstreams;

/// <summary>
/// The opencode servers behind the gateway and their REST clients: the configured ones (<c>Gateway:Upstreams</c>, for
/// the process's life) and those admins registered at run time, which <see cref="UpstreamRegistrations"/> reads from the
/// store. Reads are lock-free on an immutable view; a change publishes a new view and fires <see cref="GetChangeToken"/>.
/// </summary>
public sealed class UpstreamRegistry
{
    private readonly IHttpClientFactory _httpClients;
    private readonly UpstreamEndpoints _endpoints;
    private readonly IOptionsMonitorCache<HttpClientFactoryOptions> _clientOptions;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly Lock _lock = new();
    private readonly IReadOnlyList<OpencodeClient> _configured;
    // The registered upstreams by id, with what they were built from (a different registration replaces the client).
    private Dictionary<string, (OpencodeClient Client, string Identity)> _registered = new(StringComparer.Ordinal);
    private View _view;
    private long _registrations;
    private CancellationTokenSource _changed = new();

    private sealed record View(IReadOnlyList<OpencodeClient> All, IReadOnlyDictionary<string, OpencodeClient> ById);

    internal UpstreamRegistry(IOptions<UpstreamsOptions> options, IHttpClientFactory httpClients, UpstreamEndpoints endpoints,
        IOptionsMonitorCache<HttpClientFactoryOptions> clientOptions, TimeProvider time, ILoggerFactory loggers)
    {
        _httpClients = httpClients;
        _endpoints = endpoints;
        _clientOptions = clientOptions;
        _time = time;
        _loggers = loggers;
        _configured = [.. options.Value.Upstreams.Select(u => Create(u, configured: true))];
        Default = _configured[0];
        _view = NewView();
    }

    /// <summary>Every upstream: the configured ones in configuration order, then the registered ones.</summary>
    public IReadOnlyList<OpencodeClient> All => Volatile.Read(ref _view).All;

    /// <summary>The first configured upstream: where sessions are created unless a caller names another.</summary>
    public OpencodeClient Default { get; }

    /// <summary>The upstream with this id; <c>upstream_not_found</c> when there is none (never registered, or removed).</summary>
    public OpencodeClient Get(string upstreamId) =>
        TryGet(upstreamId, out var client) ? client : throw GatewayException.UpstreamNotFound(upstreamId);

    public bool TryGet(string upstreamId, out OpencodeClient client) => Volatile.Read(ref _view).ById.TryGetValue(upstreamId, out client!);

    /// <summary>Fires once when the set of upstreams changes (one added, removed or registered again differently).</summary>
    public IChangeToken GetChangeToken() => new CancellationChangeToken(Volatile.Read(ref _changed).Token);

    /// <summary>
    /// Makes the registered upstreams exactly <paramref name="registered"/> (an id the configuration has is the
    /// caller's to leave out): new ones get clients, gone ones lose theirs, one whose identity changed (removed and
    /// registered again) gets a new client. Returns whether anything changed.
    /// </summary>
    internal bool SetRegistered(IReadOnlyList<Registration> registered)
    {
        CancellationTokenSource changed;
        var gone = new List<OpencodeClient>();
        lock (_lock)
        {
            var next = new Dictionary<string, (OpencodeClient Client, string Identity)>(StringComparer.Ordinal);
            var different = false;
            foreach (var registration in registered)
            {
                if (_registered.TryGetValue(registration.Options.Id, out var current) && current.Identity == registration.Identity)
                {
                    next[registration.Options.Id] = current;
                    continue;
                }

                next[registration.Options.Id] = (Create(registration.Options, configured: false), registration.Identity);
                different = true;
            }

            foreach (var (id, current) in _registered)
            {
                if (!next.TryGetValue(id, out var kept) || kept.Client != current.Client)
                {
                    gone.Add(current.Client);
                    different = true;
                }
            }

            if (!different)
            {
                return false;
            }

            _registered = next;
            Volatile.Write(ref _view, NewView());
            changed = _changed;
            Volatile.Write(ref _changed, new CancellationTokenSource());
        }

        foreach (var client in gone)
        {
            Forget(client);
        }

        // (outside the lock: the change's listeners read the new view)
        changed.Cancel();
        return true;
    }

    private View NewView()
    {
        List<OpencodeClient> all = [.. _configured, .. _registered.Values.Select(r => r.Client)];
        return new View(all, all.ToDictionary(c => c.UpstreamId, StringComparer.Ordinal));
    }

    private OpencodeClient Create(UpstreamOptions upstream, bool configured)
    {
        var client = new OpencodeClient(upstream, configured, Interlocked.Increment(ref _registrations), _httpClients);
        var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage> { Name = $"opencode-rest:{upstream.Id}" };
        UpstreamHttpClients.ConfigureRestPipeline(pipeline, _time);
        _endpoints.Add(client.RestClientName, new UpstreamEndpoints.Endpoint(upstream, pipeline.ConfigureTelemetry(_loggers).Build()));
        _endpoints.Add(client.EventStreamClientName, new UpstreamEndpoints.Endpoint(upstream, RestPipeline: null));
        return client;
    }

    // The client factory keeps a name's handler until its lifetime ends (then drops it); its options go now.
    private void Forget(OpencodeClient client)
    {
        foreach (var name in new[] { client.RestClientName, client.EventStreamClientName })
        {
            _endpoints.Remove(name);
            _clientOptions.TryRemove(name);
        }
    }
}

/// <summary>An upstream registered at run time, as the registry holds it.</summary>
/// <param name="Identity">What it was registered as (address, directory, password, time): another value is another registration.</param>
internal sealed record Registration(UpstreamOptions Options, string Identity);
