using OpencodeGateway.Contracts;

namespace OpencodeGateway.Upstreams;

/// <summary>An error with a stable code (<see cref="GatewayErrorCodes"/>) and a message for humans.</summary>
public sealed class GatewayException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    /// <summary>Validation errors by field (camelCase JSON path), when the request was refused for its content.</summary>
    public IReadOnlyDictionary<string, string[]>? Errors { get; init; }

    public static GatewayException SessionNotFound(string sessionId) =>
        new(GatewayErrorCodes.SessionNotFound, $"Session '{sessionId}' was not found.");

    public static GatewayException BadRequest(string message) => new(GatewayErrorCodes.BadRequest, message);

    /// <summary>A field of the request is invalid: the message and <see cref="Errors"/> name it.</summary>
    public static GatewayException Invalid(string field, string message, string code = GatewayErrorCodes.BadRequest) =>
        new(code, $"{field}: {message}") { Errors = new Dictionary<string, string[]> { [field] = [message] } };
}
