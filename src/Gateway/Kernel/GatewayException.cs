using OpencodeGateway.Contracts;

namespace OpencodeGateway.Kernel;

/// <summary>An error with a stable code (<see cref="GatewayErrorCodes"/>) and a message for humans.</summary>
public sealed class GatewayException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    /// <summary>When the caller may try again (<c>rate_limited</c>): HTTP <c>Retry-After</c>, and said in the message.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Validation errors by field (camelCase JSON path), when the request was refused for its content.</summary>
    public IReadOnlyDictionary<string, string[]>? Errors { get; init; }

    public static GatewayException SessionNotFound(string sessionId) =>
        new(GatewayErrorCodes.SessionNotFound, $"Session '{sessionId}' was not found.");

    public static GatewayException UpstreamNotFound(string upstreamId) =>
        new(GatewayErrorCodes.UpstreamNotFound, $"Upstream '{upstreamId}' is not one of the gateway's opencode servers (never registered, or removed).");

    public static GatewayException BadRequest(string message) => new(GatewayErrorCodes.BadRequest, message);

    /// <summary>A limit was reached: <c>rate_limited</c>, with when to try again (whole seconds, at least 1).</summary>
    public static GatewayException RateLimited(string message, TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        return new(GatewayErrorCodes.RateLimited, $"{message}; retry after {seconds} s.") { RetryAfter = TimeSpan.FromSeconds(seconds) };
    }

    /// <summary>A field of the request is invalid: the message and <see cref="Errors"/> name it.</summary>
    public static GatewayException Invalid(string field, string message, string code = GatewayErrorCodes.BadRequest) =>
        new(code, $"{field}: {message}") { Errors = new Dictionary<string, string[]> { [field] = [message] } };
}
