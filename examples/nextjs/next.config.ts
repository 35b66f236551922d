import type { NextConfig } from 'next';

const nextConfig: NextConfig = {
  // The example is served on its own origin and talks to the gateway on another (CORS on the gateway's side).
  reactStrictMode: true,
  poweredByHeader: false,
};

export default nextConfig;
