// An ES module consumer: resolves the package's "import" conditions (dist/esm/*.d.ts).
import { createGatewayClient, type SessionEvent } from '@opencode-gateway/client';
import { useSession, type ChatStatus } from '@opencode-gateway/client/react';
import { SessionState } from '@opencode-gateway/client/session-state';

export const status: ChatStatus = 'ready';
export const kinds = (e: SessionEvent): string => (e.type === 'part.delta' ? e.delta : e.type);
export { createGatewayClient, useSession, SessionState };
