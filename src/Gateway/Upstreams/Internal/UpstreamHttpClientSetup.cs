using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Upstreams.Internal;

/// <summary>
/// Configures the named clients of <see cref="UpstreamHttpClients"/> from what the registry put in
/// <see cref="UpstreamEndpoints"/>. A name whose upstream is gone (removed meanwhile) stays unconfigured: no base address.
/// </summary>
internal sealed class UpstreamHttpClientSetup(UpstreamEndpoints endpoints) : IConfigureNamedOptions<HttpClientFactoryOptions>
{
    public void Configure(HttpClientFactoryOptions options) => Configure(Options.DefaultName, options);

    public void Configure(string? name, HttpClientFactoryOptions factoryOptions)
    {
        if (name is null || !endpoints.TryGet(name, out var endpoint))
        {
            return;
        }

        var upstream = endpoint.Upstream;
        var rest = endpoint.RestPipeline is not null;
        factoryOptions.HttpClientActions.Add(client =>
        {
            client.BaseAddress = new Uri(upstream.BaseUrl.EndsWith('/') ? upstream.BaseUrl : upstream.BaseUrl + "/");
            client.Timeout = rest ? upstream.RequestTimeout : Timeout.InfiniteTimeSpan;
            if (!string.IsNullOrEmpty(upstream.Password))
            {
                var user = string.IsNullOrEmpty(upstream.Username) ? "opencode" : upstream.Username;
                client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic",
                    Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{upstream.Password}")));
            }
        });
        factoryOptions.HttpMessageHandlerBuilderActions.Add(builder =>
        {
            var handler = new SocketsHttpHandler
            {
                ConnectTimeout = upstream.ConnectTimeout,
                AutomaticDecompression = DecompressionMethods.None,
            };
            builder.PrimaryHandler = handler;
            if (endpoint.RestPipeline is { } pipeline)
            {
                builder.AdditionalHandlers.Add(new ResilienceHandler(pipeline));
            }
            else
            {
                // An event stream given up (stopping, lease lost) is closed at once. Drained, the endless stream would be
                // read on for up to MaxResponseDrainTime (2 s) after the lease is released and the next holder reads.
                handler.MaxResponseDrainSize = 0;
            }
        });
    }
}
