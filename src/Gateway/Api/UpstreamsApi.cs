using Microsoft.AspNetCore.Mvc;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Leases;
using OpencodeGateway.History;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Api;

/// <summary>
/// <c>/api/upstreams</c> (admins and admin API keys): the opencode servers and their event streams, and the servers
/// registered and removed at run time. Readiness says nothing about them (<c>/readyz</c> is this node's own
/// dependencies); this is where their state is. A password given is never answered back.
/// </summary>
public static class UpstreamsApi
{
    /// <summary>Largest request body accepted (a URL, a directory and a password).</summary>
    public const int MaxBodyBytes = 16 * 1024;

    public static IEndpointRouteBuilder MapUpstreamsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/upstreams")
            .RequireAuthorization()
            .AddEndpointFilter(SessionsApi.ProblemFilter)
            .AddEndpointFilter(AdminsOnly)
            .WithTags("upstreams")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapGet("/", ListAsync)
            .WithSummary("Admins: every opencode server (configured and registered) and whether its event stream is read, by whom, since when.")
            .Produces<IReadOnlyList<UpstreamStatus>>();
        group.MapPost("/", RegisterAsync)
            .WithSummary("Admins: registers an opencode server at run time; every node serves it within Gateway:UpstreamRegistry:RefreshInterval.")
            .DocumentsBody<RegisterUpstreamRequest>(required: true, "application/json")
            .Produces<UpstreamStatus>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapDelete("/{id}", RemoveAsync)
            .WithSummary("Admins: removes a registered opencode server; its sessions answer upstream_not_found. Configured ones cannot be removed here.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);
        return endpoints;
    }

    private static async ValueTask<object?> AdminsOnly(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next) =>
        GatewayUser.From(invocation.HttpContext.User).IsAdmin
            ? await next(invocation)
            : throw new GatewayException(GatewayErrorCodes.Forbidden, "Only admins may see and change the upstreams.");

    private static async Task<IResult> ListAsync(HttpContext context, [FromServices] UpstreamStatusReader reader) =>
        TypedResults.Ok(await reader.ReadAsync(context.RequestAborted));

    private static async Task<IResult> RegisterAsync(HttpContext context, [FromServices] UpstreamRegistrations registrations,
        [FromServices] UpstreamStatusReader reader)
    {
        using var body = await JsonBody.ReadAsync(context, MaxBodyBytes, allowEmpty: false, maxDepth: 4, "application/json");
        var request = JsonBody.Deserialize<RegisterUpstreamRequest>(body!.RootElement);
        var upstream = await registrations.RegisterAsync(request, context.RequestAborted);
        return TypedResults.Created($"/api/upstreams/{upstream.UpstreamId}", await reader.ReadAsync(upstream, context.RequestAborted));
    }

    private static async Task<IResult> RemoveAsync(string id, HttpContext context, [FromServices] UpstreamRegistrations registrations)
    {
        await registrations.RemoveAsync(id, context.RequestAborted);
        return TypedResults.NoContent();
    }
}

/// <summary>
/// Each upstream's event stream: read by this node on a single node; in a cluster by whichever node holds its lease
/// (Redis says which, and whether that node's stream is connected).
/// </summary>
internal sealed class UpstreamStatusReader(UpstreamRegistry registry, UpstreamStreamState state, IUpstreamLeases leases, ISessionHistory history)
{
    public async Task<IReadOnlyList<UpstreamStatus>> ReadAsync(CancellationToken ct)
    {
        var result = new List<UpstreamStatus>();
        foreach (var upstream in registry.All)
        {
            result.Add(await ReadAsync(upstream, ct));
        }

        return result;
    }

    public async Task<UpstreamStatus> ReadAsync(OpencodeClient upstream, CancellationToken ct)
    {
        state.Snapshot().TryGetValue(upstream.UpstreamId, out var local);
        string? holder = null, stream = null;
        try
        {
            holder = await leases.HolderAsync(upstream.UpstreamId, ct);
            stream = await history.ConnectedStreamAsync(upstream.UpstreamId, ct);
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
        {
            // The cluster's view is unknown while Redis does not answer: this node's own is still told.
        }

        var heldHere = local?.Lease is not null;
        return new UpstreamStatus
        {
            Id = upstream.UpstreamId,
            BaseUrl = upstream.Options.BaseUrl,
            Configured = upstream.Configured,
            Directory = upstream.Options.Directory,
            Connected = stream is not null,
            Holder = holder?.Split('|')[0],
            FencingToken = holder is { } h && long.TryParse(h.Split('|').ElementAtOrDefault(1), out var token) ? token : null,
            HeldHere = heldHere,
            Since = heldHere ? local!.Since : null,
            LastError = local?.Connected == true ? null : local?.LastError,
            Reconnects = local?.Reconnects ?? 0,
        };
    }
}
