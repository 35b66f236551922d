using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace OpencodeGateway.Upstreams;

/// <summary>Checks <see cref="GatewayOptions"/> at start-up; every failure names its configuration key.</summary>
internal sealed partial class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        var failures = new List<string>();
        const string prefix = GatewayOptions.SectionName;

        if (options.Upstreams.Count == 0)
        {
            failures.Add($"{prefix}:Upstreams: at least one upstream (Id, BaseUrl) is required");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Upstreams.Count; i++)
        {
            var upstream = options.Upstreams[i];
            var key = $"{prefix}:Upstreams:{i}";
            if (string.IsNullOrWhiteSpace(upstream.Id) || !IdPattern().IsMatch(upstream.Id))
            {
                failures.Add($"{key}:Id: '{upstream.Id}' must be 1-64 letters, digits, '-' or '_'");
            }
            else if (!seen.Add(upstream.Id))
            {
                failures.Add($"{key}:Id: duplicate upstream id '{upstream.Id}'");
            }

            if (!Uri.TryCreate(upstream.BaseUrl, UriKind.Absolute, out var uri)
                || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
                || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
            {
                failures.Add($"{key}:BaseUrl: '{upstream.BaseUrl}' is not an absolute http(s) URL without query");
            }

            if (upstream.Password is { Length: > 0 } && string.IsNullOrEmpty(upstream.Password.Trim()))
            {
                failures.Add($"{key}:Password: must not be blank");
            }

            Positive(failures, $"{key}:RequestTimeout", upstream.RequestTimeout);
            Positive(failures, $"{key}:ConnectTimeout", upstream.ConnectTimeout);
        }

        Positive(failures, $"{prefix}:Streaming:StallTimeout", options.Streaming.StallTimeout);
        Positive(failures, $"{prefix}:Streaming:ConnectTimeout", options.Streaming.ConnectTimeout);
        Positive(failures, $"{prefix}:Streaming:ReconnectInitialDelay", options.Streaming.ReconnectInitialDelay);
        if (options.Streaming.ReconnectMaxDelay < options.Streaming.ReconnectInitialDelay)
        {
            failures.Add($"{prefix}:Streaming:ReconnectMaxDelay: must be at least ReconnectInitialDelay");
        }

        if (options.Streaming.CoalesceWindow < TimeSpan.Zero || options.Streaming.CoalesceWindow > TimeSpan.FromSeconds(1))
        {
            failures.Add($"{prefix}:Streaming:CoalesceWindow: must be between 00:00:00 (off) and 00:00:01");
        }

        if (options.Replay.MaxEvents < 1)
        {
            failures.Add($"{prefix}:Replay:MaxEvents: must be at least 1");
        }

        if (options.Replay.MaxBytes < 1024)
        {
            failures.Add($"{prefix}:Replay:MaxBytes: must be at least 1024");
        }

        Positive(failures, $"{prefix}:Replay:IdleSessionTtl", options.Replay.IdleSessionTtl);

        if (options.Outbox.MaxQueuedMessages < 16)
        {
            failures.Add($"{prefix}:Outbox:MaxQueuedMessages: must be at least 16");
        }

        if (options.Outbox.MaxQueuedBytes < 64 * 1024)
        {
            failures.Add($"{prefix}:Outbox:MaxQueuedBytes: must be at least 65536");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void Positive(List<string> failures, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{key}: must be a positive duration (e.g. 00:00:10)");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex IdPattern();
}
