namespace OpencodeGateway.Contracts;

/// <summary>
/// Stable error codes. Hub errors arrive as <c>HubException</c> messages of the form <c>"{code}: {message}"</c>
/// (SignalR prefixes them with its own text, ending in <c>"HubException: "</c>); HTTP errors carry the code in the
/// problem details' <c>code</c> member.
/// </summary>
public static class GatewayErrorCodes
{
    public const string SessionNotFound = "session_not_found";
    public const string UpstreamUnavailable = "upstream_unavailable";
    public const string UpstreamError = "upstream_error";

    /// <summary>
    /// The upstream named (or the one a session lives on) is not among the gateway's opencode servers: never registered,
    /// or removed at run time. HTTP 404.
    /// </summary>
    public const string UpstreamNotFound = "upstream_not_found";
    public const string BadRequest = "bad_request";
    public const string PermissionNotFound = "permission_not_found";
    /// <summary>The question request is not pending on the session or any of its descendants.</summary>
    public const string QuestionNotFound = "question_not_found";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string Conflict = "conflict";
    public const string PayloadTooLarge = "payload_too_large";

    /// <summary>
    /// A per-user limit (connections, prompts per minute, busy sessions, sessions per connection) or the failed
    /// authentications of a client address: HTTP 429 with <c>Retry-After</c>; hub errors end with "retry after N s".
    /// </summary>
    public const string RateLimited = "rate_limited";

    /// <summary>
    /// A service the gateway depends on (its session store; Redis in a cluster) did not answer in time: retry shortly.
    /// HTTP 503 with <c>Retry-After</c>.
    /// </summary>
    public const string ServiceUnavailable = "service_unavailable";
}
