using OpencodeGateway.Contracts;

namespace OpencodeGateway.Upstreams;

/// <summary>An error with a stable code (<see cref="GatewayErrorCodes"/>) and a message for humans.</summary>
public sealed class GatewayException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    public static GatewayException SessionNotFound(string sessionId) =>
        new(GatewayErrorCodes.SessionNotFound, $"Session '{sessionId}' was not found.");

    public static GatewayException BadRequest(string message) => new(GatewayErrorCodes.BadRequest, message);
}
