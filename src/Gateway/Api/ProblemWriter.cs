using System.Text.Json;
using OpencodeGateway.Contracts;
using OpencodeGateway.Upstreams;

namespace OpencodeGateway.Api;

/// <summary>Writes RFC 9457 problem details (<c>application/problem+json</c>) with a stable <c>code</c> member.</summary>
internal static class ProblemWriter
{
    public const string ContentType = "application/problem+json";

    public static int StatusOf(string code) => code switch
    {
        GatewayErrorCodes.BadRequest => StatusCodes.Status400BadRequest,
        GatewayErrorCodes.Unauthorized => StatusCodes.Status401Unauthorized,
        GatewayErrorCodes.Forbidden => StatusCodes.Status403Forbidden,
        GatewayErrorCodes.SessionNotFound or GatewayErrorCodes.PermissionNotFound => StatusCodes.Status404NotFound,
        GatewayErrorCodes.Conflict => StatusCodes.Status409Conflict,
        GatewayErrorCodes.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
        GatewayErrorCodes.UpstreamError => StatusCodes.Status502BadGateway,
        GatewayErrorCodes.UpstreamUnavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    private static string TitleOf(int status) => status switch
    {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        413 => "Content Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };

    public static Task WriteAsync(HttpContext context, GatewayException e) =>
        WriteAsync(context, StatusOf(e.Code), e.Code, e.Message, e.Errors);

    public static async Task WriteAsync(HttpContext context, int status, string code, string detail,
        IReadOnlyDictionary<string, string[]>? errors = null)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        var body = new Dictionary<string, object?>
        {
            ["type"] = "about:blank",
            ["title"] = TitleOf(status),
            ["status"] = status,
            ["detail"] = detail,
            ["instance"] = context.Request.Path.Value,
            ["code"] = code,
        };
        if (errors is { Count: > 0 })
        {
            body["errors"] = errors;
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = ContentType;
        await JsonSerializer.SerializeAsync(context.Response.Body, body, JsonSerializerOptions.Web, context.RequestAborted);
    }
}
