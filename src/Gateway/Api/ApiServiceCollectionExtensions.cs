using Microsoft.Extensions.DependencyInjection.Extensions;

namespace OpencodeGateway.Api;

public static class ApiServiceCollectionExtensions
{
    /// <summary>The OpenAPI document's route.</summary>
    public const string OpenApiRoute = "/openapi/{documentName}.json";

    /// <summary>
    /// Adds what the HTTP API needs: RFC 9457 problem details (<c>AddProblemDetails</c>) and the OpenAPI document
    /// <c>v1</c> of the <c>/api/*</c> endpoints.
    /// </summary>
    public static IServiceCollection AddGatewayApi(this IServiceCollection services)
    {
        services.AddProblemDetails();
        services.TryAddSingleton<UpstreamStatusReader>();
        services.AddOpenApi(o =>
        {
            o.ShouldInclude = description => description.RelativePath?.StartsWith("api/", StringComparison.Ordinal) == true;
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "opencode gateway";
                document.Info.Description = "Sessions and the SSE chat stream. Authenticate with Authorization: Bearer <token> or X-Api-Key; "
                    + "errors are RFC 9457 problem details with a stable code. The real-time API is the SignalR hub /hubs/session.";
                // Paths are relative to wherever the document was fetched: never a server named by the request's Host header.
                document.Servers = [];
                return Task.CompletedTask;
            });
        });
        return services;
    }

    /// <summary>
    /// <c>GET /openapi/v1.json</c>, without authentication (where it is served decides who sees it): the document of
    /// <c>/api/*</c>.
    /// </summary>
    public static IEndpointConventionBuilder MapGatewayOpenApi(this IEndpointRouteBuilder endpoints) =>
        endpoints.MapOpenApi(OpenApiRoute).AllowAnonymous();
}

/// <summary>OpenAPI metadata that changes nothing about how a request is matched or read.</summary>
internal static class OpenApiDocumentation
{
    /// <summary>
    /// Documents the request body as <typeparamref name="T"/>. Unlike <c>Accepts&lt;T&gt;</c>, which makes routing answer
    /// 415 to other content types, the endpoint keeps reading the body itself and answers a problem naming the field.
    /// </summary>
    public static RouteHandlerBuilder DocumentsBody<T>(this RouteHandlerBuilder builder, bool required, params string[] contentTypes) =>
        builder.AddOpenApiOperationTransformer(async (operation, context, ct) =>
        {
            var schema = await context.GetOrCreateSchemaAsync(typeof(T), cancellationToken: ct);
            var body = new Microsoft.OpenApi.OpenApiRequestBody { Required = required, Content = new Dictionary<string, Microsoft.OpenApi.OpenApiMediaType>() };
            foreach (var contentType in contentTypes)
            {
                body.Content[contentType] = new Microsoft.OpenApi.OpenApiMediaType { Schema = schema };
            }

            operation.RequestBody = body;
        });
}
