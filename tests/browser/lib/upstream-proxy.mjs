// An HTTP proxy between the gateway and opencode that can cut the event streams passing through it, as a broken
// network path would: the gateway then reconnects, and what opencode emitted meanwhile is gone.
import { createServer, request } from 'node:http';

export async function startUpstreamProxy(upstreamUrl) {
  const target = new URL(upstreamUrl);
  const streams = new Set();
  const server = createServer((req, res) => {
    const isStream = req.url.startsWith('/global/event') || req.url.startsWith('/event');
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        if (isStream) {
          const pair = { req, res, answer };
          streams.add(pair);
          res.once('close', () => streams.delete(pair));
        }
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    /** Ends every event stream now, abruptly (no last chunk). */
    cutStreams() {
      for (const { res, answer } of streams) {
        answer.destroy();
        res.destroy();
      }

      streams.clear();
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
