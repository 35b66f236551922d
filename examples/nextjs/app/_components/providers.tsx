'use client';
// One gateway client for the whole app, created in the browser: SignalR over WebSockets without the negotiate request
// (any gateway node behind a load balancer can take the socket), with tokens from this app's own token route.
import { GatewayProvider } from '@opencode-gateway/client/react';
import type { ReactNode } from 'react';
import { gatewayToken } from '@/lib/client-token';
import { GatewayUrlContext } from './gateway-url';

export function Providers({ gatewayUrl, children }: { gatewayUrl: string; children: ReactNode }) {
  return (
    <GatewayUrlContext value={gatewayUrl}>
      <GatewayProvider options={{ url: `${gatewayUrl}/hubs/session`, accessTokenFactory: gatewayToken, skipNegotiation: true }}>
        {children}
      </GatewayProvider>
    </GatewayUrlContext>
  );
}
