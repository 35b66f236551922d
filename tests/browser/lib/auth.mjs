// The one place that knows how the suite authenticates: the gateway process gets a signing key made for this run,
// and the page gets an HS256 token for it as `?token=` (the demo passes it to the client's accessTokenFactory).
import { createHash, createHmac, randomBytes } from 'node:crypto';

const signingKey = process.env.E2E_SIGNING_KEY || randomBytes(32).toString('hex');
// An admin API key: the suite asks GET /api/upstreams whether the gateway reads opencode's event stream.
const adminApiKey = randomBytes(24).toString('hex');
const adminKeyHash = createHash('sha256').update(adminApiKey).digest('hex');
const b64url = (value) => Buffer.from(value).toString('base64url');

/** A token the gateway accepts: sub = userId, valid for an hour. */
export function mintToken(userId, { workspaces } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const payload = { sub: userId, iat: now, exp: now + 3600, ...(workspaces ? { ws: workspaces } : {}) };
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${createHmac('sha256', signingKey).update(input).digest('base64url')}`;
}

export const auth = {
  /** Access token of the suite's user for the page (`?token=`). */
  token: process.env.E2E_GATEWAY_TOKEN || mintToken('e2e-user'),
  /** Extra command-line arguments for the gateway process. */
  gatewayArgs: [`--Gateway:Auth:Jwt:SigningKey=${signingKey}`, '--Gateway:Auth:ApiKeys:0:Name=e2e-admin',
    `--Gateway:Auth:ApiKeys:0:KeyHash=${adminKeyHash}`, '--Gateway:Auth:ApiKeys:0:Admin=true'],
  /** The admin API key the gateway process accepts (X-Api-Key). */
  adminApiKey,
  /** The gateway's signing key, for an app that mints its own tokens (the Next.js example's server). */
  signingKey,
};

/** The demo chat page's URL, with the access token. */
export function chatUrl(gatewayUrl, { session, protocol, events } = {}) {
  const url = new URL('/', gatewayUrl);
  if (session) url.searchParams.set('session', session);
  if (protocol) url.searchParams.set('protocol', protocol); // msgpack: the MessagePack hub protocol
  if (events) url.searchParams.set('events', events); // full: every event whole (the default is compact deltas)
  if (auth.token) url.searchParams.set('token', auth.token);
  return url.toString();
}
