namespace OpencodeGateway.TestClient;

/// <summary>The server completed an invocation with an error (the completion message's "error" text).</summary>
public sealed class HubInvocationException(string message) : Exception(message);

/// <summary>The server rejected the handshake (handshake response carried "error").</summary>
public sealed class HubHandshakeException(string message) : Exception(message);

/// <summary>
/// The connection ended (server close message, socket closed/aborted, or local dispose) while an
/// operation was pending or when starting a new one. <see cref="Exception.Message"/> carries the
/// close error text when there was one.
/// </summary>
public sealed class HubConnectionClosedException(string message, Exception? inner = null) : Exception(message, inner);
