using System.Text.RegularExpressions;
using Microsoft.AspNetCore.SignalR;
using OpencodeGateway.Contracts;

namespace OpencodeGateway.Client;

/// <summary>
/// A failed gateway call. <see cref="Code"/> is one of <see cref="GatewayErrorCodes"/> (<c>session_not_found</c>,
/// <c>rate_limited</c>, …), the hub's <c>internal_error</c> or <c>cancelled</c>, or one of the client's own codes
/// (<see cref="Disconnected"/>, <see cref="Unknown"/>).
/// </summary>
public sealed partial class GatewayException : Exception
{
    /// <summary>The call could not reach the gateway: not connected within the connect timeout, or the connection dropped.</summary>
    public const string Disconnected = "disconnected";

    /// <summary>The hub failed the call without a gateway code (a method or argument SignalR itself refused).</summary>
    public const string Unknown = "unknown";

    public GatewayException(string code, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
    }

    public string Code { get; }

    /// <summary>
    /// The same call may succeed later (the client retries rejoins after these): the upstream or a dependency was down,
    /// the hub failed or cancelled it, or the connection was not there.
    /// </summary>
    public bool IsTransient => Code is GatewayErrorCodes.UpstreamUnavailable or GatewayErrorCodes.UpstreamError
        or GatewayErrorCodes.ServiceUnavailable or "internal_error" or "cancelled" or Disconnected or Unknown;

    /// <summary>
    /// The gateway's error of whatever a hub call failed with: a <see cref="HubException"/>'s
    /// "<c>…HubException: {code}: {message}</c>" keeps its code; a lost or missing connection is <see cref="Disconnected"/>.
    /// </summary>
    public static GatewayException From(Exception exception)
    {
        if (exception is GatewayException gateway)
        {
            return gateway;
        }

        if (exception is HubException hub)
        {
            var match = HubMessage().Match(hub.Message);
            var text = match.Success ? match.Groups["message"].Value.Trim() : hub.Message;
            return match.Success && match.Groups["code"].Success
                ? new GatewayException(match.Groups["code"].Value, text, hub)
                : new GatewayException(Unknown, text, hub);
        }

        // SignalR closes a connection whose message is over the hub's size limit instead of answering the call.
        if (exception.Message.Contains("maximum message size", StringComparison.OrdinalIgnoreCase))
        {
            return new GatewayException(GatewayErrorCodes.PayloadTooLarge, exception.Message, exception);
        }

        return new GatewayException(Disconnected, exception.Message, exception);
    }

    [GeneratedRegex(@"HubException:\s*(?:(?<code>[a-z][a-z0-9_]*):\s*)?(?<message>[\s\S]*)$")]
    private static partial Regex HubMessage();
}
