// The one place that knows how the suite authenticates. Today the hub accepts anonymous connections, so there is no
// token and no extra gateway argument. When the gateway requires auth, set `token` (the page passes `?token=` on to
// the client's accessTokenFactory) and, if needed, the gateway arguments that enable it (e.g. a dev signing key).
export const auth = {
  /** Access token for the page (`?token=`), or null for anonymous. */
  token: process.env.E2E_GATEWAY_TOKEN || null,
  /** Extra command-line arguments for the gateway process. */
  gatewayArgs: [],
};

/** The demo chat page's URL, with the access token when there is one. */
export function chatUrl(gatewayUrl, { session } = {}) {
  const url = new URL('/', gatewayUrl);
  if (session) url.searchParams.set('session', session);
  if (auth.token) url.searchParams.set('token', auth.token);
  return url.toString();
}
