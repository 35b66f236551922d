using OpencodeGateway.Testing;
using System.Diagnostics;
using Gateway.Tests.Support;

namespace Gateway.Tests.Observability;

/// <summary>
/// <c>deploy/observability/alerts.yaml</c> through Prometheus' own checker: the rules parse and are valid
/// (<c>promtool check rules</c>), and each alert fires on the series its unit tests give it, and only then
/// (<c>promtool test rules alerts.test.yaml</c>).
/// </summary>
public sealed class AlertRulesTests
{
    private static readonly string ObservabilityDirectory = Path.Combine(RepoScript.Root, "deploy", "observability");

    [PromtoolFact]
    public async Task The_alert_rules_pass_promtool_check_rules()
    {
        var (exitCode, output) = await PromtoolAsync("check", "rules", "alerts.yaml");

        Assert.True(exitCode == 0, output);
        Assert.Contains("SUCCESS", output);
    }

    [PromtoolFact]
    public async Task The_alerts_fire_as_their_unit_tests_expect()
    {
        var (exitCode, output) = await PromtoolAsync("test", "rules", "alerts.test.yaml");

        Assert.True(exitCode == 0, output);
        Assert.Contains("SUCCESS", output);
    }

    private static async Task<(int ExitCode, string Output)> PromtoolAsync(params string[] args)
    {
        var start = new ProcessStartInfo(PromtoolFactAttribute.Executable ?? throw new InvalidOperationException(PromtoolFactAttribute.Missing), args)
        {
            WorkingDirectory = ObservabilityDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return (process.ExitCode, await stdout + await stderr);
    }
}

/// <summary>
/// A test that needs <c>promtool</c> (Debian's <c>prometheus</c> package: <c>scripts/install-prerequisites.sh
/// prometheus</c>). Without it the test is skipped outside CI and fails in CI (<c>CI</c> set), as the Redis and
/// PostgreSQL suites do.
/// </summary>
public sealed class PromtoolFactAttribute : FactAttribute
{
    public const string Missing = "promtool is not installed: scripts/install-prerequisites.sh prometheus";

    /// <summary>The <c>promtool</c> on <c>PATH</c>; null when there is none.</summary>
    public static readonly string? Executable = (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, "promtool"))
        .FirstOrDefault(File.Exists);

    public PromtoolFactAttribute()
    {
        if (Executable is null && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
        {
            Skip = Missing + " (in CI the test fails instead)";
        }
    }
}
