namespace OpencodeGateway.Client;

/// <summary>Where a <see cref="GatewayClient"/>'s connection is.</summary>
public enum GatewayConnectionState
{
    /// <summary>Not started, stopped, or dropped without automatic reconnect.</summary>
    Disconnected,

    /// <summary><see cref="GatewayClient.StartAsync"/> is connecting.</summary>
    Connecting,

    /// <summary>Connected: watched sessions are joined (or joining).</summary>
    Connected,

    /// <summary>The connection dropped and the client is connecting again; watched sessions rejoin when it is back.</summary>
    Reconnecting,
}
