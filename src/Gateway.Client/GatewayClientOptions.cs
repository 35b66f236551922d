using Microsoft.AspNetCore.Http.Connections.Client;

namespace OpencodeGateway.Client;

/// <summary>The hub protocol a <see cref="GatewayClient"/> speaks; the gateway serves both with the same contract.</summary>
public enum GatewayHubProtocol
{
    /// <summary>JSON (camelCase, absent members for nulls).</summary>
    Json,

    /// <summary>MessagePack with the contract's formatters (about half the bytes of JSON).</summary>
    MessagePack,
}

/// <summary>How the gateway sends session events to a connection (<c>?events=</c> on the hub URL).</summary>
public enum GatewayEventForm
{
    /// <summary>The gateway's default: text deltas as the compact <c>D(s, seq, h, offset, delta)</c>, the rest whole.</summary>
    Compact,

    /// <summary>Every event as a whole <c>SessionEvent</c>.</summary>
    Full,
}

/// <summary>How a <see cref="GatewayClient"/> connects to the gateway's session hub and how it comes back.</summary>
public sealed class GatewayClientOptions
{
    /// <summary>The delays between reconnect attempts the client uses unless told otherwise; the last one repeats.</summary>
    public static IReadOnlyList<TimeSpan> DefaultReconnectDelays { get; } =
    [
        TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(5),
        TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(20), TimeSpan.FromSeconds(30),
    ];

    /// <summary>The session hub, e.g. <c>https://gateway.example/hubs/session</c>. Required.</summary>
    public Uri? Url { get; set; }

    /// <summary>
    /// Called for every (re)connect: a bearer token minted by your app's server for the user (never the signing key).
    /// </summary>
    public Func<Task<string?>>? AccessTokenProvider { get; set; }

    /// <summary>An API key (servers), sent as <c>X-Api-Key</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// WebSockets without SignalR's negotiate request: needed behind a load balancer without sticky sessions (a negotiate
    /// answered by one node and a socket opened on another fail), and one round trip less.
    /// </summary>
    public bool SkipNegotiation { get; set; }

    public GatewayHubProtocol Protocol { get; set; } = GatewayHubProtocol.Json;

    public GatewayEventForm Events { get; set; } = GatewayEventForm.Compact;

    /// <summary>
    /// Reconnect after the connection drops, for ever (every watched session then rejoins from where it was). Off: a
    /// dropped connection stays down until <see cref="GatewayClient.StartAsync"/>.
    /// </summary>
    public bool AutomaticReconnect { get; set; } = true;

    /// <summary>Delays between reconnect attempts (and between retries of a failed rejoin); the last one repeats, ±20 %.</summary>
    public IReadOnlyList<TimeSpan> ReconnectDelays { get; set; } = DefaultReconnectDelays;

    /// <summary>How long a call made while the client is (re)connecting waits for the connection before it fails.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>The official client's server timeout (its default 30 s): how long it waits for any message before closing.</summary>
    public TimeSpan? ServerTimeout { get; set; }

    /// <summary>How often the official client pings a server it sent nothing else to (its default 15 s).</summary>
    public TimeSpan? KeepAliveInterval { get; set; }

    /// <summary>How long the official client waits for the handshake's answer (its default 15 s).</summary>
    public TimeSpan? HandshakeTimeout { get; set; }

    /// <summary>Anything else of the official client's connection options (headers, a WebSocket factory, a proxy).</summary>
    public Action<HttpConnectionOptions>? ConfigureConnection { get; set; }

    /// <summary>The clock of reconnect and retry delays and of <see cref="ConnectTimeout"/> (tests pass a fake one).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Throws <see cref="ArgumentException"/> naming every setting that cannot work.</summary>
    public void Validate()
    {
        var problems = new List<string>();
        if (Url is null)
        {
            problems.Add("Url is required (the gateway's session hub, e.g. https://gateway.example/hubs/session).");
        }
        else if (!Url.IsAbsoluteUri || Url.Scheme is not ("http" or "https" or "ws" or "wss"))
        {
            problems.Add($"Url '{Url}' must be an absolute http(s) or ws(s) URL.");
        }

        if (!Enum.IsDefined(Protocol))
        {
            problems.Add($"Protocol {Protocol} is not a GatewayHubProtocol.");
        }

        if (!Enum.IsDefined(Events))
        {
            problems.Add($"Events {Events} is not a GatewayEventForm.");
        }

        if (ReconnectDelays is null || ReconnectDelays.Count == 0 || ReconnectDelays.Any(d => d < TimeSpan.Zero))
        {
            problems.Add("ReconnectDelays must hold at least one delay, none negative.");
        }

        if (ConnectTimeout <= TimeSpan.Zero)
        {
            problems.Add("ConnectTimeout must be positive.");
        }

        foreach (var (name, value) in new[] { ("ServerTimeout", ServerTimeout), ("KeepAliveInterval", KeepAliveInterval), ("HandshakeTimeout", HandshakeTimeout) })
        {
            if (value is { } v && v <= TimeSpan.Zero)
            {
                problems.Add($"{name} must be positive when set.");
            }
        }

        if (TimeProvider is null)
        {
            problems.Add("TimeProvider is required.");
        }

        if (problems.Count > 0)
        {
            throw new ArgumentException("Invalid GatewayClientOptions: " + string.Join(" ", problems));
        }
    }
}
