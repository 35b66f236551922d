using OpencodeGateway.Kernel;

namespace OpencodeGateway.Leases.Internal;

/// <summary>The Lua scripts of <see cref="RedisUpstreamLeases"/> (<c>Leases/Scripts/*.lua</c>, each says its keys and arguments).</summary>
internal static class LeaseScripts
{
    public static readonly string Acquire = EmbeddedLua.Load("Leases", "acquire.lua");
    public static readonly string Renew = EmbeddedLua.Load("Leases", "renew.lua");
    public static readonly string Release = EmbeddedLua.Load("Leases", "release.lua");
    public static readonly string Nodes = EmbeddedLua.Load("Leases", "nodes.lua");
    public static readonly string Leave = EmbeddedLua.Load("Leases", "leave.lua");
}
