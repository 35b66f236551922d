using System.Diagnostics;

namespace OpencodeGateway.Testing;

/// <summary>What a script printed and how it ended.</summary>
public sealed record ScriptResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>The last non-empty line of stdout (the scripts print what they started there: an address, a URL).</summary>
    public string LastLine => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
}

/// <summary>
/// The one runner of the repository's own scripts, as the tests and the benchmarks drive them (<c>deploy/dev/*.sh</c>,
/// <c>deploy/cluster/cluster.sh</c>, <c>scripts/*.py</c>): by path from the checkout's root, with extra environment,
/// stdout and stderr read whole, a deadline, and a failure that says which command failed and why.
/// </summary>
public static class RepoScript
{
    private static readonly Lazy<string> RootDirectory = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Gateway.sln not found above " + AppContext.BaseDirectory);
    });

    /// <summary>The checkout (the directory of <c>Gateway.sln</c> above the running assembly).</summary>
    public static string Root => RootDirectory.Value;

    /// <summary>A path in the checkout.</summary>
    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>
    /// Runs <paramref name="script"/> (a path from the root, or absolute; <c>.sh</c> with bash, <c>.py</c> with python3).
    /// With <paramref name="check"/> a non-zero exit throws; with <paramref name="log"/> each run's stderr is appended there.
    /// </summary>
    public static async Task<ScriptResult> RunAsync(string script, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null,
        bool check = true, string? log = null, TimeSpan? timeout = null)
    {
        using var process = Start(script, args, env, out var command);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{command} did not end within {(timeout ?? TimeSpan.FromMinutes(5)).TotalMinutes:0.#} min");
        }

        return await EndAsync(command, process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false), check, log).ConfigureAwait(false);
    }

    /// <summary><see cref="RunAsync"/> for callers that cannot wait asynchronously (a port taken in a constructor).</summary>
    public static ScriptResult Run(string script, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null, bool check = true) =>
        RunAsync(script, args, env, check).GetAwaiter().GetResult();

    private static Process Start(string script, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env, out string command)
    {
        var path = Path.Combine(Root, script);
        var start = new ProcessStartInfo(path.EndsWith(".py", StringComparison.Ordinal) ? "python3" : "bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(path);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        command = string.Join(' ', [Path.GetRelativePath(Root, path), .. start.ArgumentList.Skip(1)]);
        return Process.Start(start) ?? throw new InvalidOperationException($"{command} could not be started");
    }

    private static async Task<ScriptResult> EndAsync(string command, int exitCode, string stdout, string stderr, bool check, string? log)
    {
        if (log is not null)
        {
            await File.AppendAllTextAsync(log, $"--- {DateTime.UtcNow:HH:mm:ss.fff} {command} (exit {exitCode})\n{stderr}").ConfigureAwait(false);
        }

        if (check && exitCode != 0)
        {
            throw new InvalidOperationException($"{command} failed ({exitCode}): " + (log is null ? stderr : $"see {log}"));
        }

        return new ScriptResult(exitCode, stdout, stderr);
    }
}
