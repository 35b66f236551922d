// A CommonJS consumer: resolves the package's "require" conditions (dist/cjs/*.d.ts).
import client = require('@opencode-gateway/client');
import react = require('@opencode-gateway/client/react');
import sessionState = require('@opencode-gateway/client/session-state');

export const status: react.ChatStatus = 'streaming';
export const kinds = (e: client.SessionEvent): string => (e.type === 'part.delta' ? e.delta : e.type);
export const create = client.createGatewayClient;
export const hook = react.useSessions;
export const State = sessionState.SessionState;
