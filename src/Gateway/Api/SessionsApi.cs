using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using OpencodeGateway.Auth;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;
using OpencodeGateway.Diagnostics;
using OpencodeGateway.Sessions;
using OpencodeGateway.Api.Internal;

namespace OpencodeGateway.Api;

/// <summary>
/// <c>/api/sessions</c>: create, list, get, patch, archive and (admins) adopt sessions; page their messages; answer what
/// their runs wait for (permissions and questions, the session's or its subagents'). Every endpoint needs an
/// authenticated caller; errors are RFC 9457 problem details with a stable <c>code</c>.
/// </summary>
public static class SessionsApi
{
    /// <summary>Largest request body accepted (the metadata limit is 16 KB; tags and title add a little).</summary>
    public const int MaxBodyBytes = 64 * 1024;

    public static IEndpointRouteBuilder MapSessionsApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/sessions")
            .RequireAuthorization()
            .AddEndpointFilter(ProblemFilter)
            .WithTags("sessions")
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized);

        group.MapPost("/", CreateAsync)
            .WithSummary("Creates a session on an upstream and its record (owner: the caller).")
            .DocumentsBody<CreateSessionRequest>(required: false, "application/json")
            .Produces<CreatedSession>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status502BadGateway)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        group.MapGet("/", ListAsync)
            .WithSummary("Lists the caller's sessions and their workspaces', newest first.")
            .WithDescription("Query: workspace, tag, archived (true|false), q (title contains), limit (1-200, default 50), cursor (the previous page's nextCursor).")
            .Produces<SessionList>();
        group.MapGet("/{id}", GetAsync)
            .WithSummary("One session: its record joined with opencode's info, status and last assistant message.")
            .Produces<SessionDetails>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPatch("/{id}", PatchAsync)
            .WithSummary("Changes title, tags (replaced) and metadata (JSON Merge Patch, RFC 7386).")
            .DocumentsBody<JsonElement>(required: true, "application/merge-patch+json", "application/json")
            .Produces<SessionMetadata>()
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapDelete("/{id}", ArchiveAsync)
            .WithSummary("Archives a session; ?deleteUpstream=true also deletes it on opencode.")
            .Produces<SessionMetadata>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/adopt", AdoptAsync)
            .WithSummary("Admins: gives a session created directly on opencode a record.")
            .DocumentsBody<AdoptSessionRequest>(required: true, "application/json")
            .Produces<SessionMetadata>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/{id}/messages", MessagesAsync)
            .WithSummary("The messages before a cursor (a snapshot's or a page's 'earlier'), oldest first, as opencode stored them.")
            .WithDescription("Query: before (required: the cursor), limit (1-100, default Gateway:Snapshots:MaxMessages).")
            .Produces<MessagePage>()
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/permissions/{requestId}", ReplyPermissionAsync)
            .WithSummary("Answers a permission request of the session or of one of its subagents' sessions.")
            .DocumentsBody<PermissionReplyBody>(required: true, "application/json")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/questions/{requestId}/reply", ReplyQuestionAsync)
            .WithSummary("Answers a question of the session or of one of its subagents' sessions: one array of answers per question.")
            .DocumentsBody<QuestionReplyBody>(required: true, "application/json")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/questions/{requestId}/reject", RejectQuestionAsync)
            .WithSummary("Dismisses a question of the session or of one of its subagents' sessions; the tool call ends with an error.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return endpoints;
    }

    /// <summary>Body of <c>POST /api/sessions/{id}/permissions/{requestId}</c>.</summary>
    /// <param name="Reply"><c>once</c>, <c>always</c> or <c>reject</c>.</param>
    public sealed record PermissionReplyBody(string Reply, string? Message = null);

    /// <summary>Body of <c>POST /api/sessions/{id}/questions/{requestId}/reply</c>: one array of answers per question.</summary>
    public sealed record QuestionReplyBody(IReadOnlyList<IReadOnlyList<string>> Answers);

    private static async Task<IResult> MessagesAsync(string id, HttpContext context, [FromServices] SessionCatalog catalog,
        [FromServices] SessionService sessions)
    {
        var user = GatewayUser.From(context.User);
        var query = context.Request.Query;
        var before = Single(query, "before") ?? throw GatewayException.Invalid("before", "is required: the cursor of a snapshot's or a page's 'earlier'.");
        var limit = ParseInt(Single(query, "limit"), "limit");
        var (client, _) = await catalog.AuthorizeAsync(user, id, upstream: null, context.RequestAborted);
        return TypedResults.Ok(await sessions.LoadEarlierAsync(client, id, before, limit, context.RequestAborted));
    }

    private static async Task<IResult> ReplyPermissionAsync(string id, string requestId, HttpContext context,
        [FromServices] SessionCatalog catalog, [FromServices] SessionService sessions)
    {
        var user = GatewayUser.From(context.User);
        using var body = await ReadJsonAsync(context, allowEmpty: false);
        var reply = JsonBody.Deserialize<PermissionReplyBody>(body!.RootElement);
        var (client, _) = await catalog.AuthorizeAsync(user, id, upstream: null, context.RequestAborted);
        await sessions.ReplyPermissionAsync(client, new PermissionReplyRequest(id, requestId, reply.Reply, reply.Message), context.RequestAborted);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> ReplyQuestionAsync(string id, string requestId, HttpContext context,
        [FromServices] SessionCatalog catalog, [FromServices] SessionService sessions)
    {
        var user = GatewayUser.From(context.User);
        using var body = await ReadJsonAsync(context, allowEmpty: false);
        var reply = JsonBody.Deserialize<QuestionReplyBody>(body!.RootElement);
        var (client, _) = await catalog.AuthorizeAsync(user, id, upstream: null, context.RequestAborted);
        await sessions.ReplyQuestionAsync(client, new QuestionReplyRequest(id, requestId, reply.Answers), context.RequestAborted);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> RejectQuestionAsync(string id, string requestId, HttpContext context,
        [FromServices] SessionCatalog catalog, [FromServices] SessionService sessions)
    {
        var user = GatewayUser.From(context.User);
        var (client, _) = await catalog.AuthorizeAsync(user, id, upstream: null, context.RequestAborted);
        await sessions.RejectQuestionAsync(client, new QuestionRejectRequest(id, requestId), context.RequestAborted);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> CreateAsync(HttpContext context, [FromServices] SessionCatalog catalog)
    {
        var user = GatewayUser.From(context.User);
        using var body = await ReadJsonAsync(context, allowEmpty: true);
        var request = body is null ? new CreateSessionRequest() : JsonBody.Deserialize<CreateSessionRequest>(body.RootElement);
        var (record, info) = await catalog.CreateAsync(user, request, context.RequestAborted);
        return TypedResults.Created($"/api/sessions/{record.SessionId}", new CreatedSession(record.ToContract(), info));
    }

    private static async Task<IResult> ListAsync(HttpContext context, [FromServices] SessionCatalog catalog)
    {
        var user = GatewayUser.From(context.User);
        var query = context.Request.Query;
        var request = new ListSessionsRequest(
            Workspace: Single(query, "workspace"),
            Tag: Single(query, "tag"),
            Archived: ParseBool(Single(query, "archived"), "archived"),
            Q: Single(query, "q"),
            Cursor: Single(query, "cursor"),
            Limit: ParseInt(Single(query, "limit"), "limit"));
        return TypedResults.Ok(await catalog.ListAsync(user, request, context.RequestAborted));
    }

    private static async Task<IResult> GetAsync(string id, HttpContext context, [FromServices] SessionCatalog catalog)
    {
        var user = GatewayUser.From(context.User);
        return TypedResults.Ok(await catalog.GetDetailsAsync(user, id, context.RequestAborted));
    }

    private static async Task<IResult> PatchAsync(string id, HttpContext context, [FromServices] SessionCatalog catalog)
    {
        var user = GatewayUser.From(context.User);
        using var body = await ReadJsonAsync(context, allowEmpty: false);
        var root = body!.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid("body", "must be a JSON object with title, tags and/or metadata.");
        }

        var patch = new SessionPatch();
        foreach (var member in root.EnumerateObject())
        {
            switch (member.Name)
            {
                case "title":
                    patch = patch with
                    {
                        Title = member.Value.ValueKind == JsonValueKind.String ? SessionRules.ReadString(member.Value, "title")
                            : throw GatewayException.Invalid("title", "must be a string."),
                    };
                    break;
                case "tags":
                    patch = patch with { Tags = ReadTags(member.Value) };
                    break;
                case "metadata":
                    patch = member.Value.ValueKind == JsonValueKind.Null
                        ? patch with { ClearMetadata = true }
                        : patch with { Metadata = member.Value.Clone() };
                    break;
                default:
                    throw GatewayException.Invalid(member.Name, "is not a member that can be changed (title, tags, metadata).");
            }
        }

        var updated = await catalog.UpdateAsync(user, id, patch, context.RequestAborted);
        return TypedResults.Ok(updated.ToContract());
    }

    private static async Task<IResult> ArchiveAsync(string id, HttpContext context, [FromServices] SessionCatalog catalog)
    {
        var user = GatewayUser.From(context.User);
        var deleteUpstream = ParseBool(Single(context.Request.Query, "deleteUpstream"), "deleteUpstream") ?? false;
        var archived = await catalog.ArchiveAsync(user, id, deleteUpstream, context.RequestAborted);
        return TypedResults.Ok(archived.ToContract());
    }

    private static async Task<IResult> AdoptAsync(string id, HttpContext context, [FromServices] SessionCatalog catalog)
    {
        var user = GatewayUser.From(context.User);
        if (!user.IsAdmin)
        {
            throw new GatewayException(GatewayErrorCodes.Forbidden, "Only admins may adopt sessions.");
        }

        using var body = await ReadJsonAsync(context, allowEmpty: false);
        var request = JsonBody.Deserialize<AdoptSessionRequest>(body!.RootElement);
        var record = await catalog.AdoptAsync(user, id, request, context.RequestAborted);
        return TypedResults.Created($"/api/sessions/{record.SessionId}", record.ToContract());
    }

    private static IReadOnlyList<string?> ReadTags(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw GatewayException.Invalid("tags", "must be an array of strings.");
        }

        var tags = new List<string?>();
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            tags.Add(item.ValueKind == JsonValueKind.String ? SessionRules.ReadString(item, $"tags[{i}]")
                : throw GatewayException.Invalid($"tags[{i}]", "must be a string."));
            i++;
        }

        return tags;
    }

    /// <summary>Reads the JSON body, at most <see cref="MaxBodyBytes"/>; null when empty and allowed.</summary>
    private static Task<JsonDocument?> ReadJsonAsync(HttpContext context, bool allowEmpty) =>
        JsonBody.ReadAsync(context, MaxBodyBytes, allowEmpty, maxDepth: 32, "application/json", "application/merge-patch+json");

    private static string? Single(IQueryCollection query, string name)
    {
        if (!query.TryGetValue(name, out var values))
        {
            return null;
        }

        return values.Count == 1 ? values[0] : throw GatewayException.Invalid(name, "must be given at most once.");
    }

    private static bool? ParseBool(string? value, string field) => value switch
    {
        null => null,
        "true" or "1" => true,
        "false" or "0" => false,
        _ => throw GatewayException.Invalid(field, "must be true or false."),
    };

    private static int? ParseInt(string? value, string field) =>
        value is null ? null
        : int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
        : throw GatewayException.Invalid(field, "must be a whole number.");

    internal static async ValueTask<object?> ProblemFilter(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        try
        {
            return await next(invocation);
        }
        catch (GatewayException e)
        {
            await ProblemWriter.WriteAsync(context, e);
            return Results.Empty;
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty;
        }
        catch (Exception e) when (DependencyFailures.IsUnavailable(e))
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(SessionsApi));
            ApiLog.DependencyUnavailable(logger, context.Request.Method, context.Request.Path, e.GetType().Name, e.Message);
            context.Response.Headers.RetryAfter = "1";
            await ProblemWriter.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, GatewayErrorCodes.ServiceUnavailable,
                "The gateway's session store or Redis did not answer; retry shortly.");
            return Results.Empty;
        }
        catch (Exception e)
        {
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(SessionsApi));
            ApiLog.ApiFailed(logger, context.Request.Method, context.Request.Path, e);
            await ProblemWriter.WriteAsync(context, StatusCodes.Status500InternalServerError, "internal_error",
                "The gateway failed unexpectedly; see its log.");
            return Results.Empty;
        }
    }
}
