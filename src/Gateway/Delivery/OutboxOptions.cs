using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Delivery;

/// <summary><c>Gateway:Outbox</c>: the bounded queue of messages waiting to be written to one connection.</summary>
public sealed class OutboxOptions
{
    public const string SectionName = "Gateway:Outbox";

    /// <summary>Past this many queued messages the connection is dropped (it recovers with <c>since</c>).</summary>
    public int MaxQueuedMessages { get; set; } = 10_000;

    /// <summary>Past this many queued bytes the connection is dropped.</summary>
    public long MaxQueuedBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// The send buffer of every accepted socket (SO_SNDBUF; Linux doubles it for its own bookkeeping), so a client that
    /// stops reading fills it, then its outbox, and is dropped: left to the kernel's autotuning it grows to 4 MB first.
    /// 256 KiB carries ~2.5 MB/s to a client 100 ms away, far above an agent's output. 0: the kernel's autotuning.
    /// </summary>
    public int SocketSendBufferBytes { get; set; } = 256 * 1024;
}

internal sealed class OutboxOptionsValidator : IValidateOptions<OutboxOptions>
{
    public ValidateOptionsResult Validate(string? name, OutboxOptions options)
    {
        var failures = new List<string>();
        OptionsRules.AtLeast(failures, $"{OutboxOptions.SectionName}:MaxQueuedMessages", options.MaxQueuedMessages, 16);
        OptionsRules.AtLeast(failures, $"{OutboxOptions.SectionName}:MaxQueuedBytes", options.MaxQueuedBytes, 64 * 1024);
        if (options.SocketSendBufferBytes is not 0 and (< 4096 or > 64 * 1024 * 1024))
        {
            failures.Add($"{OutboxOptions.SectionName}:SocketSendBufferBytes: must be 0 (the kernel's autotuning) or between 4096 and 67108864");
        }
        return OptionsRules.Result(failures);
    }
}
