import { ClientErrorCodes, type GatewayErrorCode } from './contracts.js';

/**
 * A failed hub call. Hub errors arrive as messages ending in `HubException: <code>: <message>`; `code` is one of
 * GatewayErrorCodes (session_not_found, bad_request, upstream_unavailable, …), `internal_error`, `cancelled`, or a
 * client code (`disconnected`, `method_not_found`, `unknown`).
 */
export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

const hubExceptionPattern = /HubException:\s*(?:([a-z][a-z0-9_]*):\s*)?([\s\S]*)$/;

const disconnectedPatterns = [
  /connection being closed/i,
  /connection (?:was|is) (?:closed|stopped|not in the 'Connected' State)/i,
  /Cannot send data if the connection is not in the 'Connected' State/i,
  /WebSocket closed/i,
  /Server timeout elapsed/i,
];

/** Turns whatever a hub invocation rejected with into a GatewayError with a code. */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) {
    return error;
  }

  const message = error instanceof Error ? error.message : typeof error === 'string' ? error : String(error);
  const match = hubExceptionPattern.exec(message);
  if (match) {
    const [, code, text = ''] = match;
    if (code) {
      return new GatewayError(code, text.trim(), { cause: error });
    }

    if (/Method does not exist/i.test(text)) {
      return new GatewayError(ClientErrorCodes.MethodNotFound, text.trim(), { cause: error });
    }

    return new GatewayError(ClientErrorCodes.Unknown, text.trim() || message, { cause: error });
  }

  if (/Method does not exist/i.test(message)) {
    return new GatewayError(ClientErrorCodes.MethodNotFound, message, { cause: error });
  }

  // SignalR cannot answer a message over the hub's size limit: it closes the connection and says why.
  if (/maximum message size of \d+B was exceeded/i.test(message)) {
    return new GatewayError('payload_too_large', message, { cause: error });
  }

  if (disconnectedPatterns.some((p) => p.test(message))) {
    return new GatewayError(ClientErrorCodes.Disconnected, message, { cause: error });
  }

  return new GatewayError(ClientErrorCodes.Unknown, message, { cause: error });
}

/** Errors after which the same call may succeed later (the client retries joins on these). */
export function isTransientError(error: GatewayError): boolean {
  return ['upstream_unavailable', 'upstream_error', 'service_unavailable', 'internal_error', 'cancelled', 'disconnected', 'unknown']
    .includes(error.code);
}
