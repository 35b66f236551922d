'use client';
import { createContext, useContext } from 'react';

/** The gateway's base URL as the browser reaches it (from the server's GATEWAY_URL, read at request time). */
export const GatewayUrlContext = createContext<string>('');

export function useGatewayUrl(): string {
  return useContext(GatewayUrlContext);
}
