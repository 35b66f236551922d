using System.Collections.Concurrent;
using System.Text.Json;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Sequencing;

/// <summary>
/// Which session is whose parent: opencode's <c>task</c> tool runs each subagent in a child session (<c>parentID</c>),
/// and a run is the tree under the session the user prompted. Learned from the sessions' own events (every
/// <c>session.created</c>/<c>updated</c> names the parent), from snapshots (a session's descendants), and, for a
/// session seen no other way, from opencode (<c>GET /session/{id}</c>, once). A session's parent never changes, so
/// what is known stays true; the cache is bounded and starts over when full.
/// </summary>
internal sealed class SessionTree(UpstreamRegistry upstreams)
{
    /// <summary>Deepest chain followed: opencode refuses subagents in subagents by default; this stops a cycle.</summary>
    public const int MaxDepth = 16;

    private const int MaxEntries = 100_000;

    // session → its parent's id, or null for a root
    private readonly ConcurrentDictionary<SessionKey, string?> _parents = new();

    /// <summary>Records a session's parent (null: the session is a root).</summary>
    public void Learn(SessionKey key, string? parentId)
    {
        if (_parents.Count >= MaxEntries && !_parents.ContainsKey(key))
        {
            _parents.Clear();
        }

        _parents[key] = parentId;
    }

    /// <summary>Records a session from its opencode info (<c>id</c>, <c>parentID</c>).</summary>
    public void Learn(string upstream, JsonElement info)
    {
        if (info.ValueKind == JsonValueKind.Object && info.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
        {
            Learn(new SessionKey(upstream, id.GetString()!), ParentOf(info));
        }
    }

    /// <summary>The <c>parentID</c> of an opencode session info, or null.</summary>
    public static string? ParentOf(JsonElement info) =>
        info.ValueKind == JsonValueKind.Object && info.TryGetProperty("parentID", out var parent) && parent.ValueKind == JsonValueKind.String
            ? parent.GetString()
            : null;

    /// <summary>
    /// The session's ancestors, nearest first, from what is known already; false when a link of the chain is unknown.
    /// </summary>
    public bool TryGetAncestors(SessionKey key, List<string> ancestors)
    {
        ancestors.Clear();
        var current = key;
        for (var depth = 0; depth < MaxDepth; depth++)
        {
            if (!_parents.TryGetValue(current, out var parent))
            {
                return false;
            }

            if (parent is null)
            {
                return true;
            }

            ancestors.Add(parent);
            current = current with { SessionId = parent };
        }

        return true;
    }

    /// <summary>The session's ancestors, nearest first, asking opencode for the links not known yet.</summary>
    public async ValueTask<IReadOnlyList<string>> GetAncestorsAsync(SessionKey key, CancellationToken ct)
    {
        var ancestors = new List<string>();
        var current = key;
        for (var depth = 0; depth < MaxDepth; depth++)
        {
            if (!_parents.TryGetValue(current, out var parent))
            {
                var info = await upstreams.Get(current.Upstream).GetSessionAsync(current.SessionId, ct);
                parent = ParentOf(info);
                Learn(current, parent);
            }

            if (parent is null)
            {
                break;
            }

            ancestors.Add(parent);
            current = current with { SessionId = parent };
        }

        return ancestors;
    }
}
