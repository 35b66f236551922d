using Microsoft.Extensions.Options;

namespace OpencodeGateway.Configuration;

/// <summary>The checks every options validator of the gateway shares; each failure is one line naming its key.</summary>
internal static class OptionsRules
{
    public static void Positive(List<string> failures, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"{key}: must be a positive duration (e.g. 00:00:10)");
        }
    }

    public static void AtLeast(List<string> failures, string key, long value, long minimum)
    {
        if (value < minimum)
        {
            failures.Add($"{key}: must be at least {minimum}");
        }
    }

    public static ValidateOptionsResult Result(List<string> failures) =>
        failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
}
