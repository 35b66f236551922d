// Server only. Mints the gateway's HS256 tokens (claims `sub`, `iat`, `exp`, optional `ws`; see the gateway's
// docs/sessions-and-auth.md) with the signing key from this server's environment. The key never reaches the browser:
// the browser gets short-lived tokens from app/api/gateway-token/route.ts.
import { createHmac } from 'node:crypto';
import type { DemoUser } from './demo-login';

/** How long a token is valid. The gateway closes a hub connection when its token expires; the client reconnects with
 * a fresh one. */
export const tokenLifetimeSeconds = 10 * 60;

/** `GATEWAY_SIGNING_KEY`: the gateway's `Gateway:Auth:Jwt:SigningKey` (plain text, or `base64:` + base64). */
function signingKey(): Buffer {
  const key = process.env.GATEWAY_SIGNING_KEY;
  if (!key) {
    throw new Error('GATEWAY_SIGNING_KEY is not set: give this server the gateway\'s Gateway:Auth:Jwt:SigningKey.');
  }

  return key.startsWith('base64:') ? Buffer.from(key.slice('base64:'.length), 'base64') : Buffer.from(key, 'utf8');
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

export function mintGatewayToken(user: DemoUser, now = Math.floor(Date.now() / 1000)): { token: string; expiresAt: number } {
  const exp = now + tokenLifetimeSeconds;
  const payload = { sub: user.name, iat: now, exp, ...(user.workspaces.length ? { ws: user.workspaces } : {}) };
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
  const signature = createHmac('sha256', signingKey()).update(input).digest('base64url');
  return { token: `${input}.${signature}`, expiresAt: exp * 1000 };
}

/** The gateway's base URL as the browser reaches it (`GATEWAY_URL`, default http://127.0.0.1:5000). */
export function gatewayUrl(): string {
  return (process.env.GATEWAY_URL ?? 'http://127.0.0.1:5000').replace(/\/+$/, '');
}
