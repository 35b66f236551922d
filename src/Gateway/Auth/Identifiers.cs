namespace OpencodeGateway.Auth;

/// <summary>Shapes of user and workspace ids (from tokens, API keys, requests).</summary>
internal static class Identifiers
{
    public const int MaxUserIdLength = 256;
    public const int MaxWorkspaceLength = 128;
    public const string UserIdRule = "must be 1-256 characters without control characters";
    public const string WorkspaceRule = "must be 1-128 characters without control characters";

    public static bool IsValidUserId(string? value) => IsPrintable(value, MaxUserIdLength);

    public static bool IsValidWorkspace(string? value) => IsPrintable(value, MaxWorkspaceLength);

    private static bool IsPrintable(string? value, int max) =>
        !string.IsNullOrWhiteSpace(value) && value.Length <= max && !value.Any(char.IsControl);
}
