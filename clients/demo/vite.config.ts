import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:5280';

export default defineConfig({
  base: '/',
  resolve: {
    // The client package from this repository, compiled from source with the demo (no prior build needed).
    alias: { '@opencode-gateway/client': fileURLToPath(new URL('../ts/src/index.ts', import.meta.url)) },
    dedupe: ['@microsoft/signalr'],
  },
  build: {
    outDir: fileURLToPath(new URL('../../src/Gateway/wwwroot', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    proxy: { '/hubs': { target: gateway, ws: true } },
  },
});
