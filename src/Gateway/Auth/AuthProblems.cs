using Microsoft.AspNetCore.Mvc;
using OpencodeGateway.Contracts;
using OpencodeGateway.Diagnostics;

namespace OpencodeGateway.Auth;

/// <summary>
/// The 401 and 403 answers: RFC 9457 problem details (through <c>AddProblemDetails</c>) with a stable <c>code</c>,
/// counted in <c>gateway.errors</c>.
/// </summary>
internal static class AuthProblems
{
    public static Task WriteAsync(HttpContext context, int status, string code, string detail)
    {
        if (context.Response.HasStarted)
        {
            return Task.CompletedTask;
        }

        var problem = new ProblemDetails { Status = status, Detail = detail, Instance = context.Request.Path.Value };
        problem.Extensions["code"] = code;
        context.RequestServices.GetRequiredService<GatewayMetrics>().ErrorAnswered(code, ErrorSurface.Http);
        return TypedResults.Problem(problem).ExecuteAsync(context);
    }

    public static Task WriteForbiddenAsync(HttpContext context) =>
        WriteAsync(context, StatusCodes.Status403Forbidden, GatewayErrorCodes.Forbidden, "The caller may not do this.");
}
