using System.Reflection;

namespace OpencodeGateway.Leases.Internal;

/// <summary>The Lua scripts of <see cref="RedisUpstreamLeases"/>, embedded from <c>Leases/Scripts/*.lua</c> and read once.</summary>
internal static class LeaseScripts
{
    public static readonly string Acquire = Load("acquire.lua");
    public static readonly string Renew = Load("renew.lua");
    public static readonly string Release = Load("release.lua");
    public static readonly string Nodes = Load("nodes.lua");
    public static readonly string Leave = Load("leave.lua");

    private static string Load(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Leases/Scripts/" + name)
            ?? throw new InvalidOperationException($"The script {name} is not embedded in the gateway's assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
