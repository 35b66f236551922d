using OpencodeGateway.Kernel;

namespace OpencodeGateway.Limits.Internal;

/// <summary>The Lua scripts of <see cref="RedisUserCounters"/> (<c>Limits/Scripts/*.lua</c>).</summary>
internal static class LimitScripts
{
    public static readonly string TakeSlot = EmbeddedLua.Load("Limits", "take-slot.lua");
    public static readonly string CountSlots = EmbeddedLua.Load("Limits", "count-slots.lua");
    public static readonly string TryCount = EmbeddedLua.Load("Limits", "try-count.lua");
    public static readonly string RenewNode = EmbeddedLua.Load("Limits", "renew-node.lua");
}
