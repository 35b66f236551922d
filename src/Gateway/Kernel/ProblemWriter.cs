using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Kernel;

/// <summary>
/// RFC 9457 problem details (<c>application/problem+json</c>, written by ASP.NET Core's <c>IProblemDetailsService</c>)
/// with a stable <c>code</c> member and, for invalid input, <c>errors</c> by field; each one counted in
/// <c>gateway.errors</c>.
/// </summary>
public static class ProblemWriter
{
    public static int StatusOf(string code) => code switch
    {
        GatewayErrorCodes.BadRequest => StatusCodes.Status400BadRequest,
        GatewayErrorCodes.Unauthorized => StatusCodes.Status401Unauthorized,
        GatewayErrorCodes.Forbidden => StatusCodes.Status403Forbidden,
        GatewayErrorCodes.SessionNotFound or GatewayErrorCodes.PermissionNotFound or GatewayErrorCodes.QuestionNotFound
            or GatewayErrorCodes.UpstreamNotFound => StatusCodes.Status404NotFound,
        GatewayErrorCodes.Conflict => StatusCodes.Status409Conflict,
        GatewayErrorCodes.PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
        GatewayErrorCodes.RateLimited => StatusCodes.Status429TooManyRequests,
        GatewayErrorCodes.UpstreamError => StatusCodes.Status502BadGateway,
        GatewayErrorCodes.UpstreamUnavailable or GatewayErrorCodes.ServiceUnavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    public static Task WriteAsync(HttpContext context, GatewayException e)
    {
        if (e.RetryAfter is { } retryAfter && !context.Response.HasStarted)
        {
            context.Response.Headers.RetryAfter = ((int)retryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return WriteAsync(context, StatusOf(e.Code), e.Code, e.Message, e.Errors);
    }

    /// <summary>The 403 of the authorization layer.</summary>
    public static Task WriteForbiddenAsync(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status403Forbidden, GatewayErrorCodes.Forbidden, "The caller may not do this.");

    public static Task WriteAsync(HttpContext context, int status, string code, string detail,
        IReadOnlyDictionary<string, string[]>? errors = null)
    {
        if (context.Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        var problem = new ProblemDetails
        {
            Status = status,
            Title = ReasonPhrases.GetReasonPhrase(status),
            Detail = detail,
            Instance = context.Request.Path.Value,
        };
        problem.Extensions["code"] = code;
        context.RequestServices.GetRequiredService<GatewayMetrics>().ErrorAnswered(code, ErrorSurface.Http);
        if (errors is { Count: > 0 })
        {
            problem.Extensions["errors"] = errors;
        }

        // Through IProblemDetailsService when the client accepts JSON; as plain problem JSON otherwise (an SSE client's
        // Accept: text/event-stream still gets the problem, not an empty answer).
        return TypedResults.Problem(problem).ExecuteAsync(context);
    }
}
