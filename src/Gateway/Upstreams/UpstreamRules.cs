using System.Text.RegularExpressions;

namespace OpencodeGateway.Upstreams;

/// <summary>
/// What an upstream's id, URL, directory and password must be: the same rules for <c>Gateway:Upstreams</c> and for
/// upstreams registered through <c>POST /api/upstreams</c>. Each check returns what is wrong, or null.
/// </summary>
public static partial class UpstreamRules
{
    public const int MaxDirectoryLength = 4096;
    public const int MaxPasswordLength = 1024;

    public static string? IdProblem(string? id) =>
        id is not null && IdPattern().IsMatch(id) ? null : $"'{id}' must be 1-64 letters, digits, '-' or '_'";

    /// <summary>An absolute http(s) URL without query or fragment, and without user info (a password goes in its own field).</summary>
    public static string? BaseUrlProblem(string? baseUrl) =>
        !Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri)
        || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment)
            ? $"'{baseUrl}' is not an absolute http(s) URL without query"
            : !string.IsNullOrEmpty(uri.UserInfo) ? "must not hold user info (user:password@): give the password on its own"
            : null;

    public static string? DirectoryProblem(string? directory) =>
        directory is null ? null
        : directory.Length is 0 or > MaxDirectoryLength || directory.Any(char.IsControl) ? $"must be 1-{MaxDirectoryLength} characters without control characters"
        : null;

    public static string? PasswordProblem(string? password) =>
        password is null ? null
        : string.IsNullOrWhiteSpace(password) ? "must not be blank"
        : password.Length > MaxPasswordLength || password.Any(char.IsControl) ? $"must be at most {MaxPasswordLength} characters without control characters"
        : null;

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex IdPattern();
}
