using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Hubs;

/// <summary><c>Gateway:Hub</c>: limits of the session hub.</summary>
public sealed class SessionHubOptions
{
    public const string SectionName = "Gateway:Hub";

    /// <summary>
    /// Largest message a client may send, in bytes. SignalR cannot answer a bigger one (it does not read it): it
    /// closes the connection with <c>InvalidDataException: The maximum message size of …B was exceeded</c>. A prompt
    /// within the prompt limit (262,144 characters) always fits in the default.
    /// </summary>
    public long MaximumReceiveMessageSize { get; set; } = 1024 * 1024;
}

internal sealed class SessionHubOptionsValidator : IValidateOptions<SessionHubOptions>
{
    public ValidateOptionsResult Validate(string? name, SessionHubOptions options)
    {
        var failures = new List<string>();
        const string key = $"{SessionHubOptions.SectionName}:MaximumReceiveMessageSize";
        if (options.MaximumReceiveMessageSize is < 64 * 1024 or > 64 * 1024 * 1024)
        {
            failures.Add($"{key}: must be between 65536 and 67108864 bytes");
        }

        return OptionsRules.Result(failures);
    }
}
