using OpencodeGateway.Kernel;

namespace OpencodeGateway.History.Internal;

/// <summary>
/// The Lua scripts of the Redis history (<c>History/Scripts/*.lua</c>, each says its keys and arguments). A session's
/// state is a hash (<c>~e</c> epoch, <c>~q</c> seq, <c>~x</c> the stream it is continuous with, <c>~b</c> history bytes,
/// <c>~r</c> last text-TTL refresh, and the live-state entries of <see cref="LiveStateEntries"/>), its texts are strings
/// (appended to), its recent events a stream with ids <c>{epoch}-{seq}</c>. Each script runs atomically, so readers
/// always see state and history at one position. Epochs and numbers cross Lua as strings formatted with <c>%.0f</c>:
/// they stay below 2^53, where Lua's doubles are exact.
/// </summary>
internal static class RedisHistoryScripts
{
    public static readonly string NewEpoch = EmbeddedLua.Load("History", "new-epoch.lua");
    public static readonly string Ensure = EmbeddedLua.Load("History", "ensure.lua");
    public static readonly string Append = EmbeddedLua.Load("History", "append.lua");
    public static readonly string ReadState = EmbeddedLua.Load("History", "read-state.lua");
    public static readonly string ReadAfter = EmbeddedLua.Load("History", "read-after.lua");
}
