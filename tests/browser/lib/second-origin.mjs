// A tiny static server on its own port: a second origin (http://127.0.0.1:<other port>) whose page loads
// @microsoft/signalr's browser bundle and calls the gateway from there, as an app on its own origin would.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const signalrBundle = join(dirname(require.resolve('@microsoft/signalr/package.json')), 'dist', 'browser', 'signalr.min.js');

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>second origin</title>
<script src="/signalr.min.js"></script></head>
<body><h1>An app on another origin</h1></body></html>`;

/** Starts the server on 127.0.0.1 and `port` (0: a free one); returns `{ origin, close() }`. */
export async function startSecondOrigin(port = 0) {
  const files = {
    '/': ['text/html; charset=utf-8', page],
    '/signalr.min.js': ['text/javascript; charset=utf-8', readFileSync(signalrBundle)],
  };
  const server = createServer((request, response) => {
    const file = files[new URL(request.url, 'http://x').pathname];
    if (!file) {
      response.writeHead(404).end();
      return;
    }

    response.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
