using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;
using OpencodeGateway.Sessions;

namespace OpencodeGateway.Hubs;

/// <summary><c>Gateway:Hub</c>: limits of the session hub.</summary>
public sealed class SessionHubOptions
{
    public const string SectionName = "Gateway:Hub";

    /// <summary>
    /// Largest message a client may send, in bytes; unset: what a prompt with one attachment at
    /// <c>Gateway:Prompts:MaxAttachmentBytes</c> needs (7.5 MiB with the defaults). SignalR cannot answer a bigger message
    /// (it does not read it): it closes the connection with <c>InvalidDataException: The maximum message size of …B was
    /// exceeded</c>. SignalR buffers a message only while it arrives, so the limit costs an idle connection nothing.
    /// </summary>
    public long? MaximumReceiveMessageSize { get; set; }

    /// <summary>
    /// How often the hub pings a connection it sent nothing else to (SignalR's keep-alive), so clients and proxies see
    /// the connection alive.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A connection that sends nothing for this long (clients ping every 15 s by default) is closed: a client that is
    /// gone, or stuck, holds no connection slot. Twice the clients' keep-alive.
    /// </summary>
    public TimeSpan ClientTimeoutInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The limit in effect.</summary>
    internal static long Effective(SessionHubOptions hub, PromptOptions prompts) =>
        hub.MaximumReceiveMessageSize ?? Math.Max(1024 * 1024, prompts.LargestPromptMessageBytes);
}

internal sealed class SessionHubOptionsValidator(IOptions<PromptOptions> prompts) : IValidateOptions<SessionHubOptions>
{
    public ValidateOptionsResult Validate(string? name, SessionHubOptions options)
    {
        var failures = new List<string>();
        const string key = $"{SessionHubOptions.SectionName}:MaximumReceiveMessageSize";
        if (options.MaximumReceiveMessageSize is { } size)
        {
            if (size is < 64 * 1024 or > 128 * 1024 * 1024)
            {
                failures.Add($"{key}: must be between 65536 and 134217728 bytes");
            }
            else if (size < prompts.Value.LargestPromptMessageBytes)
            {
                failures.Add($"{key}: {size} bytes cannot carry a prompt with an attachment of "
                    + $"{PromptOptions.SectionName}:MaxAttachmentBytes ({prompts.Value.MaxAttachmentBytes} bytes): set it to at least "
                    + $"{prompts.Value.LargestPromptMessageBytes}, or leave it unset to follow the attachment limit");
            }
        }

        OptionsRules.Positive(failures, $"{SessionHubOptions.SectionName}:KeepAliveInterval", options.KeepAliveInterval);
        if (options.ClientTimeoutInterval <= options.KeepAliveInterval)
        {
            failures.Add($"{SessionHubOptions.SectionName}:ClientTimeoutInterval: must be longer than KeepAliveInterval (twice the clients' keep-alive, 00:00:30 by default)");
        }

        return OptionsRules.Result(failures);
    }
}
