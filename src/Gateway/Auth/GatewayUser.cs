using System.Security.Claims;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Auth;

/// <summary>The caller, as the gateway's authorization sees it.</summary>
public sealed record GatewayUser(string UserId, IReadOnlyList<string> Workspaces, bool IsAdmin)
{
    public const string WorkspaceClaim = "ws";
    public const string AdminClaim = "gateway:admin";
    public const string MethodClaim = "gateway:auth";

    /// <summary>The user of an authenticated principal; <c>unauthorized</c> when there is none.</summary>
    public static GatewayUser From(ClaimsPrincipal? principal)
    {
        var id = principal?.Identity is { IsAuthenticated: true } ? principal.FindFirstValue(ClaimTypes.NameIdentifier) : null;
        if (string.IsNullOrEmpty(id))
        {
            throw new GatewayException(GatewayErrorCodes.Unauthorized, "Authentication is required.");
        }

        var workspaces = principal!.FindAll(WorkspaceClaim).Select(c => c.Value).Distinct(StringComparer.Ordinal).ToList();
        return new GatewayUser(id, workspaces, principal.HasClaim(AdminClaim, "true"));
    }

    public bool IsMemberOf(string? workspace) => workspace is not null && Workspaces.Contains(workspace, StringComparer.Ordinal);

    /// <summary>A session is visible to its owner, to members of its workspace, and to admins.</summary>
    public bool CanSee(string ownerId, string? workspace) =>
        IsAdmin || string.Equals(ownerId, UserId, StringComparison.Ordinal) || IsMemberOf(workspace);

    internal ClaimsPrincipal ToPrincipal(string method, string scheme)
    {
        var claims = new List<Claim>
        {
            new(ClaimTypes.NameIdentifier, UserId),
            new(ClaimTypes.Name, UserId),
            new(MethodClaim, method),
        };
        claims.AddRange(Workspaces.Select(w => new Claim(WorkspaceClaim, w)));
        if (IsAdmin)
        {
            claims.Add(new Claim(AdminClaim, "true"));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, scheme, ClaimTypes.Name, ClaimTypes.Role));
    }
}
