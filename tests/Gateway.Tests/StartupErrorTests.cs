using System.Diagnostics;

namespace Gateway.Tests;

/// <summary>
/// The built gateway process with bad settings: whatever the log levels, it prints exactly one line naming the key(s)
/// and exits with code 2, before the host starts (no "Hosting failed to start", no stack trace).
/// </summary>
public sealed class StartupErrorTests
{
    private const string SigningKey = "a-signing-key-of-at-least-32-bytes-for-tests";

    private static async Task<(int ExitCode, string[] Lines)> RunGatewayAsync(params string[] settings)
    {
        var directory = Directory.CreateTempSubdirectory("gw-startup-").FullName;
        try
        {
            var start = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = directory, // no appsettings.json here: only what the test passes
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Gateway.dll"));
            foreach (var argument in new[]
            {
                "--urls=http://127.0.0.1:0", "--Gateway:Upstreams:0:Id=local", "--Gateway:Upstreams:0:BaseUrl=http://127.0.0.1:9",
                $"--Gateway:Store:DataDirectory={directory}",
            }.Concat(settings))
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
            start.Environment.Remove("ASPNETCORE_URLS");
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("the gateway did not stop on its bad settings: " + await stdout + await stderr);
            }

            var output = (await stdout) + (await stderr);
            return (process.ExitCode, output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("Information")]
    [InlineData("Trace")]
    public async Task Production_without_a_signing_key_prints_one_line_at_any_log_level(string level)
    {
        var (exitCode, lines) = await RunGatewayAsync($"--Logging:LogLevel:Default={level}", $"--Logging:LogLevel:Microsoft={level}",
            $"--Logging:Console:LogLevel:Default={level}");

        Assert.Equal(2, exitCode);
        var line = Assert.Single(lines);
        Assert.StartsWith("Configuration error: Gateway:Auth:Jwt:SigningKey: required", line);
    }

    [Theory]
    [InlineData("--Gateway:Upstreams:0:RequestTimeout=soon", "Configuration error: Failed to convert configuration value 'soon' at 'Gateway:Upstreams:0:RequestTimeout'")]
    [InlineData("--Gateway:Streaming:StallTimeout=-", "Configuration error: Failed to convert configuration value '-' at 'Gateway:Streaming:StallTimeout'")]
    [InlineData("--Gateway:Auth:ApiKeys:0:Admin=yes", "Configuration error: Failed to convert configuration value 'yes' at 'Gateway:Auth:ApiKeys:0:Admin'")]
    [InlineData("--Authentication:Schemes:Bearer:Authority=http://idp.example/", "Configuration error: Authentication:Schemes:Bearer:Authority: must be https://")]
    [InlineData("--Gateway:Limits:PromptsPerMinute=0", "Configuration error: Gateway:Limits:PromptsPerMinute: must be at least 1")]
    [InlineData("--Gateway:Limits:ConnectionsPerNode=50", "Configuration error: Gateway:Limits:ConnectionsPerUser: 100 is more than ConnectionsPerNode (50)")]
    [InlineData("--Gateway:Limits:TrustedProxies:0=10.0.0.0/33", "Configuration error: Gateway:Limits:TrustedProxies:0: '10.0.0.0/33' is not an IP address or a CIDR network")]
    [InlineData("--Gateway:Store:Provider=mysql", "Configuration error: Gateway:Store:Provider: 'mysql' must be 'sqlite' or 'postgres'")]
    [InlineData("--ConnectionStrings:Redis=127.0.0.1:9", "Configuration error: ConnectionStrings:Gateway: cluster mode (ConnectionStrings:Redis is set) needs the PostgreSQL store")]
    public async Task Every_configuration_error_is_one_line_naming_the_key_and_exit_code_2(string setting, string expected)
    {
        var (exitCode, lines) = await RunGatewayAsync($"--Gateway:Auth:Jwt:SigningKey={SigningKey}", setting,
            "--Logging:LogLevel:Default=Debug");

        Assert.Equal(2, exitCode);
        var line = Assert.Single(lines);
        Assert.StartsWith(expected, line);
    }

    [Fact]
    public async Task Failures_of_several_sections_share_the_one_line()
    {
        var (exitCode, lines) = await RunGatewayAsync("--Gateway:Store:Provider=mysql", "--Gateway:Upstreams:0:BaseUrl=nope",
            "--ConnectionStrings:Redis=127.0.0.1:9", "--Gateway:Cluster:LeaseRenewInterval=00:00:05");

        Assert.Equal(2, exitCode);
        var line = Assert.Single(lines);
        Assert.Contains("Gateway:Store:Provider:", line);
        Assert.Contains("Gateway:Upstreams:0:BaseUrl:", line);
        Assert.Contains("Gateway:Auth:Jwt:SigningKey:", line);
        Assert.Contains("Gateway:Cluster:LeaseRenewInterval: must be at most half of LeaseTtl", line);
    }
}
