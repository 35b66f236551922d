// Browser side: the gateway token from this app's own /api/gateway-token, reused until a minute before it expires.
let cached: { token: string; expiresAt: number } | null = null;
let inflight: Promise<string> | null = null;

export function gatewayToken(): Promise<string> {
  if (cached && cached.expiresAt - 60_000 > Date.now()) {
    return Promise.resolve(cached.token);
  }

  return (inflight ??= (async () => {
    try {
      const response = await fetch('/api/gateway-token', { cache: 'no-store' });
      if (response.status === 401) {
        window.location.assign('/login');
        throw new Error('Not logged in.');
      }

      if (!response.ok) {
        throw new Error(`The token route answered ${response.status}.`);
      }

      cached = (await response.json()) as { token: string; expiresAt: number };
      return cached.token;
    } finally {
      inflight = null;
    }
  })());
}
