namespace OpencodeGateway.Upstreams;

/// <summary>The <c>Gateway</c> configuration section.</summary>
public sealed class GatewayOptions
{
    public const string SectionName = "Gateway";

    /// <summary>The opencode servers behind the gateway (<c>Gateway:Upstreams</c>).</summary>
    public List<UpstreamOptions> Upstreams { get; set; } = [];

    /// <summary><c>Gateway:Streaming</c>: the upstream event subscription.</summary>
    public StreamingOptions Streaming { get; set; } = new();

    /// <summary><c>Gateway:Replay</c>: what the gateway keeps per session to recover clients.</summary>
    public ReplayOptions Replay { get; set; } = new();

    /// <summary><c>Gateway:Outbox</c>: how much may be queued for one slow connection.</summary>
    public OutboxOptions Outbox { get; set; } = new();
}

/// <summary>One opencode server (<c>opencode serve</c>).</summary>
public sealed class UpstreamOptions
{
    /// <summary>Stable id, used in group names and by clients (letters, digits, '-', '_').</summary>
    public string Id { get; set; } = "";

    /// <summary>Base URL of the opencode server, e.g. <c>http://127.0.0.1:4096</c>.</summary>
    public string BaseUrl { get; set; } = "";

    /// <summary>HTTP basic-auth user when opencode runs with <c>OPENCODE_SERVER_PASSWORD</c> (opencode's default is <c>opencode</c>).</summary>
    public string? Username { get; set; }

    /// <summary>HTTP basic-auth password (<c>OPENCODE_SERVER_PASSWORD</c> of that server).</summary>
    public string? Password { get; set; }

    /// <summary>Directory new sessions are created in (sent as <c>x-opencode-directory</c>); the server's cwd when empty.</summary>
    public string? Directory { get; set; }

    /// <summary>Timeout of one REST call to this upstream.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Timeout of opening a TCP connection to this upstream.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>The one event subscription per upstream.</summary>
public sealed class StreamingOptions
{
    /// <summary>No bytes for this long means the stream stalled (opencode sends a heartbeat every 10 s).</summary>
    public TimeSpan StallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to wait for the response headers of the event stream.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>First reconnect delay; doubles per failed attempt, with full jitter.</summary>
    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Cap of the reconnect delay.</summary>
    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Consecutive text deltas of the same part arriving within this window are sent as one <c>part.delta</c> (first
    /// offset, concatenated text). Zero (default) sends every upstream delta as it comes.
    /// </summary>
    public TimeSpan CoalesceWindow { get; set; } = TimeSpan.Zero;
}

/// <summary>The per-session replay log and live state.</summary>
public sealed class ReplayOptions
{
    /// <summary>Most events kept per session for clients that rejoin with <c>since</c>.</summary>
    public int MaxEvents { get; set; } = 4096;

    /// <summary>Most bytes (estimated) kept per session in the replay log.</summary>
    public long MaxBytes { get; set; } = 1024 * 1024;

    /// <summary>A session nobody watches and that had no event for this long is forgotten.</summary>
    public TimeSpan IdleSessionTtl { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>The bounded queue of messages waiting to be written to one connection.</summary>
public sealed class OutboxOptions
{
    /// <summary>Past this many queued messages the connection is dropped (it recovers with <c>since</c>).</summary>
    public int MaxQueuedMessages { get; set; } = 10_000;

    /// <summary>Past this many queued bytes the connection is dropped.</summary>
    public long MaxQueuedBytes { get; set; } = 4 * 1024 * 1024;
}
