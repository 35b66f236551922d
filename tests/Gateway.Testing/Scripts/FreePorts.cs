using System.Globalization;

namespace OpencodeGateway.Testing;

/// <summary>
/// Free loopback ports from the project's one finder, <c>scripts/free-ports.py</c>: below the kernel's ephemeral range,
/// so no outgoing connection takes one before its server binds it (or while a stopped server is down).
/// </summary>
public static class FreePorts
{
    /// <param name="withNext">The port after each one is free too (opencode's mock LLM takes it).</param>
    public static int[] Take(int count, bool withNext = false)
    {
        string[] args = withNext ? [count.ToString(CultureInfo.InvariantCulture), "--with-next"] : [count.ToString(CultureInfo.InvariantCulture)];
        var output = RepoScript.Run("scripts/free-ports.py", args).Stdout;
        return [.. output.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))];
    }

    public static int Take() => Take(1)[0];
}
