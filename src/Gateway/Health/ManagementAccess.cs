using Microsoft.Extensions.Options;
using OpencodeGateway.Auth;

namespace OpencodeGateway.Health;

/// <summary>
/// Who may see the gateway's internals (<see cref="ManagementOptions"/>): with management URLs, requests that came in on
/// their ports, and nobody on the public ones; without, anyone outside Production and admins in Production.
/// </summary>
internal sealed class ManagementAccess(IOptions<ManagementOptions> options, IHostEnvironment environment)
{
    private readonly IReadOnlySet<int> _ports = options.Value.Ports;

    public bool Allows(HttpContext context) => _ports.Count > 0
        ? _ports.Contains(context.Connection.LocalPort)
        : !environment.IsProduction() || context.User.HasClaim(GatewayUser.AdminClaim, "true");

}

/// <summary>Marks an endpoint of the internals (<see cref="HealthEndpoints.RequireManagementAccess"/>).</summary>
internal sealed class ManagementEndpoint
{
    public static readonly ManagementEndpoint Instance = new();
}
