// Builds and runs the Next.js example (examples/nextjs) for the browser suite: the TS client packed first (`npm pack`;
// the example installs that tarball, as an app installs the published package), the example's npm install and
// `next build`, then `next start` as a child process on its own port, stopped by pid.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { logDir, repoRoot } from './stack.mjs';

export const exampleDir = join(repoRoot, 'examples', 'nextjs');
const clientDir = join(repoRoot, 'clients', 'ts');
const nextBin = join(exampleDir, 'node_modules', 'next', 'dist', 'bin', 'next');
const npmFlags = ['--no-audit', '--no-fund', '--loglevel=error'];

function log(message) {
  process.stderr.write(`[e2e-next ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

function run(command, args, options = {}) {
  const started = Date.now();
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  log(`${command} ${args.join(' ')} (${((Date.now() - started) / 1000).toFixed(1)} s, exit ${result.status})`);
  if (result.status !== 0) {
    const tail = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.trim().split('\n').slice(-40).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}):\n${tail}`);
  }

  return result.stdout;
}

/** clients/ts: install and pack (its prepack script builds dist/); the example: install (that tarball) and next build. */
export function buildNextApp() {
  // A lock that pins the tarball's integrity makes npm install the copy its cache holds for that integrity (the
  // client as it was when the lock was written), or fail once the client changed: the tarball changes with the client.
  const lock = JSON.parse(readFileSync(join(exampleDir, 'package-lock.json'), 'utf8'));
  if (lock.packages['node_modules/@opencode-gateway/client']?.integrity) {
    throw new Error('examples/nextjs/package-lock.json pins the integrity of the client tarball: remove that "integrity" line');
  }

  run('npm', ['install', ...npmFlags], { cwd: clientDir });
  run('npm', ['pack', '--loglevel=error'], { cwd: clientDir });
  // npm keeps an installed dependency of the same version; drop it so the copy is the package just packed.
  rmSync(join(exampleDir, 'node_modules', '@opencode-gateway', 'client'), { recursive: true, force: true });
  run('npm', ['install', ...npmFlags], { cwd: exampleDir });
  run(process.execPath, [nextBin, 'build'], { cwd: exampleDir, env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' } });
}

const apps = new Set();

/** `next start` on 127.0.0.1:`port`, talking to `gatewayUrl` with tokens it signs with `signingKey`. */
export async function startNextApp({ port, gatewayUrl, signingKey }) {
  mkdirSync(logDir, { recursive: true });
  const out = openSync(join(logDir, 'nextjs.log'), 'w');
  const child = spawn(process.execPath, [nextBin, 'start', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: exampleDir,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', GATEWAY_URL: gatewayUrl, GATEWAY_SIGNING_KEY: signingKey },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const app = { url: `http://127.0.0.1:${port}`, child, exited };
  apps.add(app);
  log(`next start pid ${child.pid} on ${app.url}`);

  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`next start exited (${child.exitCode ?? child.signalCode}); see ${join(logDir, 'nextjs.log')}`);
    }

    try {
      const response = await fetch(`${app.url}/login`, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return app;
      last = `HTTP ${response.status}`;
    } catch (e) {
      last = String(e.cause ?? e);
    }

    await new Promise((r) => setTimeout(r, 150));
  }

  throw new Error(`the Next.js example did not answer within 60 s: ${last}`);
}

export async function stopNextApps() {
  for (const app of apps) {
    if (app.child.exitCode === null && app.child.signalCode === null) {
      app.child.kill('SIGTERM');
      const timer = setTimeout(() => app.child.kill('SIGKILL'), 10_000);
      await app.exited;
      clearTimeout(timer);
    }
  }

  apps.clear();
}

// Whatever way the process ends: SIGKILL to exactly the pids started here (stack.mjs's signal handlers exit, which
// runs this).
process.once('exit', () => {
  for (const app of apps) {
    if (app.child.exitCode === null && app.child.signalCode === null) app.child.kill('SIGKILL');
  }
});
