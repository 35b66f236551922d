namespace OpencodeGateway.Sequencing;

/// <summary>A session of an upstream: opencode's session ids are unique per server, not across servers.</summary>
public readonly record struct SessionKey(string Upstream, string SessionId)
{
    /// <summary>The SignalR group of the session's watchers (and the name its in-process subscribers use).</summary>
    public string GroupName => GroupNameOf(Upstream, SessionId);

    public static string GroupNameOf(string upstream, string sessionId) => $"session:{upstream}:{sessionId}";

    public override string ToString() => GroupName;
}
