import type { Metadata } from 'next';
import Link from 'next/link';
import type { ReactNode } from 'react';
import { currentDemoUser } from '@/lib/demo-login';
import { gatewayUrl } from '@/lib/gateway-token';
import { Providers } from './_components/providers';
import './globals.css';

export const metadata: Metadata = { title: 'opencode gateway · Next.js example', icons: { icon: 'data:,' } };

// Rendered per request: the gateway URL comes from the server's environment when it runs, not when it was built.
export const dynamic = 'force-dynamic';

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentDemoUser();
  return (
    <html lang="en">
      <body>
        <header className="top">
          <Link href="/" className="brand">opencode gateway · Next.js</Link>
          {user && (
            <form action="/api/logout" method="post" className="user">
              <span data-testid="user-name">{user.name}</span>
              <button type="submit">Log out</button>
            </form>
          )}
        </header>
        <main>{user ? <Providers gatewayUrl={gatewayUrl()}>{children}</Providers> : children}</main>
      </body>
    </html>
  );
}
