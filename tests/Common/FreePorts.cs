using System.Diagnostics;
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
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(RepoRoot(), "scripts", "free-ports.py"));
        start.ArgumentList.Add(count.ToString(CultureInfo.InvariantCulture));
        if (withNext)
        {
            start.ArgumentList.Add("--with-next");
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0
            ? [.. output.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))]
            : throw new InvalidOperationException($"scripts/free-ports.py {count} failed ({process.ExitCode})");
    }

    public static int Take() => Take(1)[0];

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "free-ports.py")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("scripts/free-ports.py not found above " + AppContext.BaseDirectory);
    }
}
