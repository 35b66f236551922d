using System.Reflection;

namespace OpencodeGateway.Limits.Internal;

/// <summary>The Lua scripts of <see cref="RedisUserCounters"/>, embedded from <c>Limits/Scripts/*.lua</c> and read once.</summary>
internal static class LimitScripts
{
    public static readonly string TakeSlot = Load("take-slot.lua");
    public static readonly string CountSlots = Load("count-slots.lua");
    public static readonly string TryCount = Load("try-count.lua");
    public static readonly string RenewNode = Load("renew-node.lua");

    private static string Load(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Limits/Scripts/" + name)
            ?? throw new InvalidOperationException($"The script {name} is not embedded in the gateway's assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
