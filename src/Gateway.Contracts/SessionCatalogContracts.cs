using System.Text.Json;

namespace OpencodeGateway.Contracts;

/// <summary>Argument of the hub's <c>ListSessions</c> (and the query of <c>GET /api/sessions</c>).</summary>
/// <param name="Workspace">Only sessions of this workspace.</param>
/// <param name="Tag">Only sessions with this tag.</param>
/// <param name="Archived">Null or false: active sessions only; true: archived sessions only.</param>
/// <param name="Q">Case-insensitive substring of the title.</param>
/// <param name="Cursor">The <see cref="SessionList.NextCursor"/> of the previous page.</param>
/// <param name="Limit">Page size, 1–200 (default 50).</param>
public sealed record ListSessionsRequest(string? Workspace = null, string? Tag = null, bool? Archived = null,
    string? Q = null, string? Cursor = null, int? Limit = null);

/// <summary>One page of sessions, most recently updated first.</summary>
/// <param name="NextCursor">Pass it as <c>cursor</c> to get the next page; null on the last page.</param>
public sealed record SessionList(IReadOnlyList<SessionMetadata> Items, string? NextCursor);

/// <summary>
/// A change of one session in the lists of the users who may see it (<c>SessionListChanged</c>): its owner, the members
/// of its workspace, admins. Apply it by session id: a connection may receive it more than once (as owner and as
/// member), and changes of one session may arrive out of order: keep the one with the latest
/// <see cref="SessionMetadata.UpdatedAt"/>.
/// </summary>
/// <param name="Kind"><see cref="SessionListChangeKinds"/>: <c>created</c>, <c>updated</c> or <c>archived</c>.</param>
/// <param name="Session">The session's record after the change.</param>
public sealed record SessionListChange(string Kind, SessionMetadata Session);

/// <summary>The kinds of <see cref="SessionListChange"/>.</summary>
public static class SessionListChangeKinds
{
    /// <summary>A new session (created, or given a record by an admin).</summary>
    public const string Created = "created";

    /// <summary>Its title, tags or metadata changed.</summary>
    public const string Updated = "updated";

    /// <summary>Archived: it leaves lists of unarchived sessions.</summary>
    public const string Archived = "archived";
}

/// <summary>Argument of the hub's <c>UpdateMetadata</c>; null members are left as they are.</summary>
/// <param name="Title">New title (also set on opencode).</param>
/// <param name="Tags">Replaces the tag list.</param>
/// <param name="Metadata">A JSON Merge Patch (RFC 7386) applied to the metadata object: null deletes a key.</param>
public sealed record UpdateSessionRequest(string SessionId, string? Title = null, IReadOnlyList<string>? Tags = null,
    JsonElement? Metadata = null);

/// <summary>Body of <c>POST /api/sessions/{id}/adopt</c> (admins): give a session created directly on opencode a record.</summary>
public sealed record AdoptSessionRequest(string OwnerId, string? Workspace = null, string? Upstream = null,
    IReadOnlyList<string>? Tags = null, JsonElement? Metadata = null);

/// <summary>
/// Body of <c>POST /api/upstreams</c> (admins): an opencode server registered at run time, kept in the session store and
/// served by every node within <c>Gateway:UpstreamRegistry:RefreshInterval</c>.
/// </summary>
/// <param name="Id">1-64 letters, digits, '-' or '_'; unique among the configured and registered upstreams.</param>
/// <param name="BaseUrl">Absolute http(s) URL of <c>opencode serve</c>, without query, fragment or user info.</param>
/// <param name="Directory">Directory new sessions are created in (<c>x-opencode-directory</c>); the server's own when absent.</param>
/// <param name="Password">The server's <c>OPENCODE_SERVER_PASSWORD</c> (user <c>opencode</c>); stored encrypted, never returned.</param>
public sealed record RegisterUpstreamRequest(string Id, string BaseUrl, string? Directory = null, string? Password = null);

/// <summary>Answer of <c>POST /api/sessions</c>: the record and opencode's session info.</summary>
public sealed record CreatedSession(SessionMetadata Session, JsonElement Info);

/// <summary>Answer of <c>GET /api/sessions/{id}</c>: the record joined with opencode's live state.</summary>
public sealed record SessionDetails
{
    public required SessionMetadata Session { get; init; }
    /// <summary>opencode's session info (title, directory, time, …); null when the upstream could not be asked.</summary>
    public JsonElement? Info { get; init; }
    /// <summary><c>{"type":"idle"|"busy"|"retry",…}</c>.</summary>
    public JsonElement? Status { get; init; }
    /// <summary>Info of the last assistant message (model, <c>cost</c>, <c>tokens</c>, time), when there is one.</summary>
    public JsonElement? LastAssistantMessage { get; init; }
    /// <summary>Set when the live part is missing: the error code of the upstream call (e.g. <c>upstream_unavailable</c>).</summary>
    public string? LiveError { get; init; }
}

/// <summary>
/// One opencode server of the gateway, as <c>GET /api/upstreams</c> (admins) reports it: whether its event stream is
/// read (by this node, or in a cluster by the node holding its lease) and how that went. Never its password.
/// </summary>
public sealed record UpstreamStatus
{
    public required string Id { get; init; }
    public required string BaseUrl { get; init; }
    /// <summary>
    /// From the configuration (<c>Gateway:Upstreams</c>): there for good, not removable through the API. False: registered
    /// at run time (<c>POST /api/upstreams</c>).
    /// </summary>
    public required bool Configured { get; init; }
    /// <summary>The directory new sessions are created in; null: the server's own.</summary>
    public string? Directory { get; init; }
    /// <summary>Its event stream is read now, by this node or another.</summary>
    public required bool Connected { get; init; }
    /// <summary>The node reading it (a cluster's lease holder); null when none holds it.</summary>
    public string? Holder { get; init; }
    /// <summary>The fencing token of the holder's lease (cluster).</summary>
    public long? FencingToken { get; init; }
    /// <summary>This node reads it.</summary>
    public required bool HeldHere { get; init; }
    /// <summary>When this node's stream last connected or dropped (this node's holding only).</summary>
    public DateTimeOffset? Since { get; init; }
    /// <summary>The last reason this node's stream failed, while it is not connected.</summary>
    public string? LastError { get; init; }
    /// <summary>Reconnects of this node's stream since it started.</summary>
    public int Reconnects { get; init; }
}
