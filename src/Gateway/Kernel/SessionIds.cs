using System.Text.RegularExpressions;

namespace OpencodeGateway.Kernel;

/// <summary>Shapes of opencode ids the gateway accepts from clients (opencode answers 500 to malformed ones).</summary>
internal static partial class SessionIds
{
    [GeneratedRegex("^ses_[A-Za-z0-9]{1,64}$")]
    public static partial Regex Session();

    [GeneratedRegex("^per_[A-Za-z0-9]{1,64}$")]
    public static partial Regex Permission();

    [GeneratedRegex("^que_[A-Za-z0-9]{1,64}$")]
    public static partial Regex Question();
}
