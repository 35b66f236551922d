// Server only. The example's stand-in for your app's real login: a user name (and optional workspaces) kept in an
// HMAC-signed, httpOnly cookie. Replace it with your own authentication; the gateway token route below only needs to
// know who the user is.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { cookies } from 'next/headers';
import { NextResponse } from 'next/server';

export const demoLoginCookie = 'demo_login';

export interface DemoUser {
  /** Becomes the token's `sub`: the gateway's owner id of the sessions this user creates. */
  readonly name: string;
  /** Becomes the token's `ws` claim (workspace ids whose sessions the user also sees). */
  readonly workspaces: readonly string[];
}

const namePattern = /^[A-Za-z0-9_.@-]{1,64}$/;

/** Checks a login form's fields; returns the user or an error message. */
export function parseDemoLogin(name: unknown, workspaces: unknown): DemoUser | string {
  if (typeof name !== 'string' || !namePattern.test(name.trim())) {
    return 'The user name must be 1-64 letters, digits, or . _ @ -';
  }

  const ws = typeof workspaces === 'string' ? workspaces.split(',').map((w) => w.trim()).filter(Boolean) : [];
  if (ws.some((w) => !namePattern.test(w))) {
    return 'Workspace ids must be letters, digits, or . _ @ - (comma-separated)';
  }

  return { name: name.trim(), workspaces: ws };
}

/**
 * The key that signs the login cookie: DEMO_SESSION_SECRET, else one made when the server starts (logins then last as
 * long as the process). Kept on globalThis: Next may load this module once per route bundle.
 */
function sessionSecret(): Buffer {
  const configured = process.env.DEMO_SESSION_SECRET;
  if (configured) {
    return Buffer.from(configured, 'utf8');
  }

  const holder = globalThis as { __demoSessionSecret?: Buffer };
  return (holder.__demoSessionSecret ??= randomBytes(32));
}

function sign(payload: string): string {
  return createHmac('sha256', sessionSecret()).update(payload).digest('base64url');
}

export function sealDemoUser(user: DemoUser): string {
  const payload = Buffer.from(JSON.stringify(user)).toString('base64url');
  return `${payload}.${sign(payload)}`;
}

export function openDemoUser(value: string | undefined): DemoUser | null {
  const [payload, signature, extra] = value?.split('.') ?? [];
  if (!payload || !signature || extra !== undefined) {
    return null;
  }

  const expected = Buffer.from(sign(payload));
  const actual = Buffer.from(signature);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    return null;
  }

  try {
    const user = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as DemoUser;
    return typeof user.name === 'string' && Array.isArray(user.workspaces) ? user : null;
  } catch {
    return null;
  }
}

/** The logged-in user of this request, or null. */
export async function currentDemoUser(): Promise<DemoUser | null> {
  return openDemoUser((await cookies()).get(demoLoginCookie)?.value);
}

/** A 303 to a path of this app. Relative, so it works whatever host name the browser used. */
export function seeOther(path: string): NextResponse {
  return new NextResponse(null, { status: 303, headers: { location: path } });
}
