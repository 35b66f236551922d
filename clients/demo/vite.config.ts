import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const gateway = process.env.GATEWAY_URL ?? 'http://127.0.0.1:5280';

export default defineConfig({
  base: '/',
  resolve: {
    // @opencode-gateway/client is ../ts linked into node_modules: its built dist/ through its exports map (the
    // prebuild script builds it). Its @microsoft/signalr is this app's, not the copy in ../ts/node_modules.
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
