namespace OpencodeGateway.Upstreams;

/// <summary><c>Gateway:Upstreams</c>: the opencode servers behind the gateway.</summary>
public sealed class UpstreamsOptions
{
    public const string SectionName = "Gateway:Upstreams";

    /// <summary>The upstreams in configuration order; the first is where sessions are created by default.</summary>
    public List<UpstreamOptions> Upstreams { get; set; } = [];
}

/// <summary>One opencode server (<c>opencode serve</c>), <c>Gateway:Upstreams:N</c>.</summary>
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
