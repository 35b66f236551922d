using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.SignalR;

/// <summary><c>Gateway:Outbox</c>: the bounded queue of messages waiting to be written to one connection.</summary>
public sealed class OutboxOptions
{
    public const string SectionName = "Gateway:Outbox";

    /// <summary>Past this many queued messages the connection is dropped (it recovers with <c>since</c>).</summary>
    public int MaxQueuedMessages { get; set; } = 10_000;

    /// <summary>Past this many queued bytes the connection is dropped.</summary>
    public long MaxQueuedBytes { get; set; } = 4 * 1024 * 1024;
}

internal sealed class OutboxOptionsValidator : IValidateOptions<OutboxOptions>
{
    public ValidateOptionsResult Validate(string? name, OutboxOptions options)
    {
        var failures = new List<string>();
        OptionsRules.AtLeast(failures, $"{OutboxOptions.SectionName}:MaxQueuedMessages", options.MaxQueuedMessages, 16);
        OptionsRules.AtLeast(failures, $"{OutboxOptions.SectionName}:MaxQueuedBytes", options.MaxQueuedBytes, 64 * 1024);
        return OptionsRules.Result(failures);
    }
}
