using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Sessions;

/// <summary><c>Gateway:Prompts</c>: what a prompt may carry.</summary>
public sealed class PromptOptions
{
    public const string SectionName = "Gateway:Prompts";

    /// <summary>
    /// Largest attachment (a <c>file</c> part's <c>data:</c> URL), in decoded bytes. A prompt with a bigger one is refused
    /// (<c>payload_too_large</c> naming this limit). The hub's largest message follows it (see
    /// <c>Gateway:Hub:MaximumReceiveMessageSize</c>), so an attachment within it is always sendable.
    /// </summary>
    public long MaxAttachmentBytes { get; set; } = 5 * 1024 * 1024;

    /// <summary>Most attachments in one prompt.</summary>
    public int MaxAttachments { get; set; } = 10;

    /// <summary>
    /// The bytes a hub message needs to carry a prompt of one attachment at the limit (base64 grows it by 4/3) plus the
    /// longest text prompt in UTF-8 (3 bytes per character at most) and the JSON around them.
    /// </summary>
    public long LargestPromptMessageBytes => (MaxAttachmentBytes + 2) / 3 * 4 + SessionService.MaxPromptLength * 3L + 64 * 1024;
}

internal sealed class PromptOptionsValidator : IValidateOptions<PromptOptions>
{
    public ValidateOptionsResult Validate(string? name, PromptOptions options)
    {
        var failures = new List<string>();
        if (options.MaxAttachmentBytes is < 0 or > 48 * 1024 * 1024)
        {
            failures.Add($"{PromptOptions.SectionName}:MaxAttachmentBytes: must be between 0 (no attachments) and 50331648 (48 MiB)");
        }

        if (options.MaxAttachments is < 0 or > 100)
        {
            failures.Add($"{PromptOptions.SectionName}:MaxAttachments: must be between 0 and 100");
        }

        return OptionsRules.Result(failures);
    }
}
