using Microsoft.Extensions.Options;
using OpencodeGateway.Configuration;

namespace OpencodeGateway.Upstreams;

/// <summary>Checks <see cref="UpstreamsOptions"/> at start-up; every failure names its configuration key.</summary>
internal sealed class UpstreamsOptionsValidator : IValidateOptions<UpstreamsOptions>
{
    public ValidateOptionsResult Validate(string? name, UpstreamsOptions options)
    {
        var failures = new List<string>();
        const string prefix = UpstreamsOptions.SectionName;
        if (options.Upstreams.Count == 0)
        {
            failures.Add($"{prefix}: at least one upstream (Id, BaseUrl) is required");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Upstreams.Count; i++)
        {
            var upstream = options.Upstreams[i];
            var key = $"{prefix}:{i}";
            if (UpstreamRules.IdProblem(upstream.Id) is { } idProblem)
            {
                failures.Add($"{key}:Id: {idProblem}");
            }
            else if (!seen.Add(upstream.Id))
            {
                failures.Add($"{key}:Id: duplicate upstream id '{upstream.Id}'");
            }

            if (UpstreamRules.BaseUrlProblem(upstream.BaseUrl) is { } urlProblem)
            {
                failures.Add($"{key}:BaseUrl: {urlProblem}");
            }

            if (upstream.Password is { Length: > 0 } && string.IsNullOrEmpty(upstream.Password.Trim()))
            {
                failures.Add($"{key}:Password: must not be blank");
            }

            OptionsRules.Positive(failures, $"{key}:RequestTimeout", upstream.RequestTimeout);
            OptionsRules.Positive(failures, $"{key}:ConnectTimeout", upstream.ConnectTimeout);
        }

        return OptionsRules.Result(failures);
    }
}
