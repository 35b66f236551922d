// The browser's gateway token: minted here, on the server, for the logged-in user. The signing key stays in this
// server's environment; the browser only ever holds short-lived tokens.
import { NextResponse } from 'next/server';
import { currentDemoUser } from '@/lib/demo-login';
import { mintGatewayToken } from '@/lib/gateway-token';

export async function GET() {
  const user = await currentDemoUser();
  if (!user) {
    return NextResponse.json({ error: 'not logged in' }, { status: 401, headers: { 'cache-control': 'no-store' } });
  }

  return NextResponse.json(mintGatewayToken(user), { headers: { 'cache-control': 'no-store' } });
}
