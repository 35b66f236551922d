using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Leases;
using OpencodeGateway.History;
using OpencodeGateway.Ingest;
using OpencodeGateway.Upstreams;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Api;

/// <summary>
/// <c>GET /api/upstreams</c> (admins and admin API keys): the opencode servers and their event streams. Readiness says
/// nothing about them (<c>/readyz</c> is this node's own dependencies); this is where their state is.
/// </summary>
public static class UpstreamsApi
{
    public static IEndpointRouteBuilder MapUpstreamsApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGroup("/api/upstreams")
            .RequireAuthorization()
            .AddEndpointFilter(SessionsApi.ProblemFilter)
            .WithTags("upstreams")
            .MapGet("/", ListAsync)
            .WithSummary("Admins: every configured opencode server and whether its event stream is read, by whom, since when.")
            .Produces<IReadOnlyList<UpstreamStatus>>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden);
        return endpoints;
    }

    private static async Task<IResult> ListAsync(HttpContext context, [FromServices] UpstreamStatusReader reader)
    {
        if (!GatewayUser.From(context.User).IsAdmin)
        {
            throw new GatewayException(GatewayErrorCodes.Forbidden, "Only admins may list the upstreams.");
        }

        return TypedResults.Ok(await reader.ReadAsync(context.RequestAborted));
    }
}

/// <summary>
/// Each upstream's event stream: read by this node on a single node; in a cluster by whichever node holds its lease
/// (Redis says which, and whether that node's stream is connected).
/// </summary>
internal sealed class UpstreamStatusReader(IOptions<UpstreamsOptions> options, UpstreamStreamState state, IUpstreamLeases leases,
    ISessionHistory history)
{
    public async Task<IReadOnlyList<UpstreamStatus>> ReadAsync(CancellationToken ct)
    {
        var streams = state.Snapshot();
        var result = new List<UpstreamStatus>();
        foreach (var upstream in options.Value.Upstreams)
        {
            streams.TryGetValue(upstream.Id, out var local);
            string? holder = null, stream = null;
            try
            {
                holder = await leases.HolderAsync(upstream.Id, ct);
                stream = await history.ConnectedStreamAsync(upstream.Id, ct);
            }
            catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
            {
                // The cluster's view is unknown while Redis does not answer: this node's own is still told.
            }

            var heldHere = local?.Lease is not null;
            result.Add(new UpstreamStatus
            {
                Id = upstream.Id,
                BaseUrl = upstream.BaseUrl,
                Connected = stream is not null,
                Holder = holder?.Split('|')[0],
                FencingToken = holder is { } h && long.TryParse(h.Split('|').ElementAtOrDefault(1), out var token) ? token : null,
                HeldHere = heldHere,
                Since = heldHere ? local!.Since : null,
                LastError = local?.Connected == true ? null : local?.LastError,
                Reconnects = local?.Reconnects ?? 0,
            });
        }

        return result;
    }
}
