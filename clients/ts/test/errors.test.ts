import { describe, expect, it } from 'vitest';
import { GatewayError, isTransientError, toGatewayError } from '../src/errors.js';

describe('toGatewayError', () => {
  it.each([
    ["An unexpected error occurred invoking 'Join' on the server. HubException: session_not_found: Session 'ses_x' was not found.",
      'session_not_found', "Session 'ses_x' was not found."],
    ["An unexpected error occurred invoking 'Prompt' on the server. HubException: bad_request: A prompt needs text: or parts.",
      'bad_request', 'A prompt needs text: or parts.'],
    ["An unexpected error occurred invoking 'Abort' on the server. HubException: cancelled: the connection closed.",
      'cancelled', 'the connection closed.'],
    ["Failed to invoke 'ListSessions' due to an error on the server. HubException: Method does not exist.",
      'method_not_found', 'Method does not exist.'],
    ['Invocation canceled due to the underlying connection being closed.', 'disconnected',
      'Invocation canceled due to the underlying connection being closed.'],
    ["Cannot send data if the connection is not in the 'Connected' State.", 'disconnected',
      "Cannot send data if the connection is not in the 'Connected' State."],
    ['something else', 'unknown', 'something else'],
  ])('%s', (message, code, text) => {
    const error = toGatewayError(new Error(message));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.toJSON()).toEqual({ code, message: text });
  });

  it('tells transient errors from permanent ones', () => {
    expect(isTransientError(new GatewayError('upstream_unavailable', ''))).toBe(true);
    expect(isTransientError(new GatewayError('disconnected', ''))).toBe(true);
    expect(isTransientError(new GatewayError('session_not_found', ''))).toBe(false);
    expect(isTransientError(new GatewayError('unauthorized', ''))).toBe(false);
  });
});
