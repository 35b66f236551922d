namespace OpencodeGateway.Diagnostics;

/// <summary>Tags of the gateway's health checks.</summary>
public static class HealthTags
{
    /// <summary>
    /// The checks <c>/readyz</c> runs: whether this node can serve, i.e. its own dependencies (the session store; Redis
    /// in a cluster), never an opencode server's state (one of several being down must not take every node out of its
    /// load balancer; <c>GET /api/upstreams</c> and the metrics report it).
    /// </summary>
    public const string Ready = "ready";
}
