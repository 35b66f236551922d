using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using OpencodeGateway.Contracts;
using OpencodeGateway.Kernel;

namespace OpencodeGateway.Api;

/// <summary>
/// The JSON bodies of the HTTP routes, read within a bound before anything else happens: a declared length past it is
/// refused unread, a body that grows past it is refused once it does (and Kestrel stops reading there), all as problem
/// details (<c>payload_too_large</c>, <c>bad_request</c> naming the field).
/// </summary>
internal static class JsonBody
{
    private const int ChunkBytes = 16 * 1024;

    /// <summary>
    /// Reads the body: at most <paramref name="maxBytes"/>, of one of <paramref name="mediaTypes"/>, nested at most
    /// <paramref name="maxDepth"/> deep; null when empty and <paramref name="allowEmpty"/>.
    /// </summary>
    public static async Task<JsonDocument?> ReadAsync(HttpContext context, long maxBytes, bool allowEmpty, int maxDepth,
        params string[] mediaTypes)
    {
        var request = context.Request;
        if (request.ContentLength > maxBytes)
        {
            throw TooLarge(maxBytes);
        }

        // Kestrel's own limit (30 MB) would refuse a large attachment without a problem response, and read a flood of
        // bytes to a small route: the route's own bound replaces it.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBytes + 2 * ChunkBytes;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[ChunkBytes];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                throw TooLarge(maxBytes);
            }

            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0)
        {
            return allowEmpty ? null : throw GatewayException.Invalid("body", "a JSON object is required.");
        }

        var mediaType = request.ContentType?.Split(';')[0].Trim();
        if (!mediaTypes.Contains(mediaType, StringComparer.OrdinalIgnoreCase))
        {
            throw GatewayException.Invalid("body", $"Content-Type must be {string.Join(" or ", mediaTypes)}.");
        }

        try
        {
            return JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = maxDepth });
        }
        catch (JsonException e)
        {
            throw GatewayException.Invalid("body", $"is not valid JSON ({e.Message}).");
        }
    }

    /// <summary>A JSON object as <typeparamref name="T"/>; a member of the wrong type or with a lone surrogate is named.</summary>
    public static T Deserialize<T>(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw GatewayException.Invalid("body", "must be a JSON object.");
        }

        try
        {
            return element.Deserialize<T>(JsonSerializerOptions.Web)
                ?? throw GatewayException.Invalid("body", "must be a JSON object.");
        }
        catch (JsonException e)
        {
            var field = string.IsNullOrEmpty(e.Path) ? "body" : e.Path.TrimStart('$', '.');
            throw GatewayException.Invalid(field.Length == 0 ? "body" : field,
                e.InnerException is InvalidOperationException ? "must be valid Unicode text (it holds a lone surrogate)." : "has the wrong type.");
        }
    }

    private static GatewayException TooLarge(long maxBytes) =>
        GatewayException.Invalid("body", $"is larger than {maxBytes} bytes.", GatewayErrorCodes.PayloadTooLarge);
}
