// Starts and stops what the browser suite needs: the demo page built into src/Gateway/wwwroot, the gateway built
// and run as its own process, and the real opencode + mock LLM of deploy/dev on the suite's own ports.
// Everything started here is stopped by pid (opencode.sh stop uses its recorded pids), also when a test fails or the
// process is interrupted.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auth } from './auth.mjs';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const artifactsDir = process.env.E2E_ARTIFACTS ?? join(repoRoot, 'artifacts');
export const logDir = join(artifactsDir, 'browser');

const ocPort = process.env.E2E_OC_PORT ?? '4596';
const mockPort = process.env.E2E_MOCK_PORT ?? '4597';
const ocStateDir = process.env.E2E_OC_STATE_DIR ?? join(repoRoot, '.dev', 'browser-opencode');
const opencodeSh = join(repoRoot, 'deploy', 'dev', 'opencode.sh');
const gatewayDll = join(repoRoot, 'src', 'Gateway', 'bin', 'Release', 'net10.0', 'Gateway.dll');
const ocEnv = { ...process.env, OC_PORT: ocPort, MOCK_PORT: mockPort, OC_STATE_DIR: ocStateDir };

function log(message) {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

/** Runs a command to completion; throws with its output's tail when it fails. Returns stdout. */
function run(command, args, options = {}) {
  const started = Date.now();
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  log(`${command} ${args.join(' ')} (${((Date.now() - started) / 1000).toFixed(1)} s, exit ${result.status})`);
  if (result.status !== 0) {
    const tail = `${result.stdout ?? ''}\n${result.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal}):\n${tail}`);
  }

  return result.stdout;
}

/** Builds the TS client, the demo page into src/Gateway/wwwroot, and the gateway (Release). */
export function buildAll() {
  const demo = join(repoRoot, 'clients', 'demo');
  // npm install, not npm ci: the registry lacks some platform-only optional packages, so npm ci rejects the lock.
  // The demo links the client (file:../ts); its prebuild installs and builds the client.
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: demo });
  run('npm', ['run', 'build'], { cwd: demo });
  if (process.env.E2E_SKIP_DOTNET_BUILD !== '1') {
    run('dotnet', ['build', join(repoRoot, 'src', 'Gateway'), '-c', 'Release', '-nologo', '-v', 'quiet']);
  }
}

let opencodeStarted = false;

/** Starts opencode + the mock LLM on the suite's ports, from a clean state dir; returns opencode's base URL. */
export function startOpencode() {
  // A previous run that died leaves its pids recorded in the state dir: stop exactly those, and start clean.
  run(opencodeSh, ['stop', '--clean'], { env: ocEnv });
  opencodeStarted = true;
  const url = run(opencodeSh, ['start'], { env: ocEnv }).trim().split('\n').pop();
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url)) throw new Error(`opencode.sh start printed '${url}'`);
  return url;
}

export function stopOpencode() {
  if (!opencodeStarted) return;
  opencodeStarted = false;
  try {
    run(opencodeSh, ['stop'], { env: ocEnv });
  } catch (e) {
    log(String(e));
  }
}

/**
 * A free port on 127.0.0.1 from the project's one finder, scripts/free-ports.py: below the ephemeral range, so no
 * outgoing connection takes it before its server binds it, nor while a restarted gateway is down.
 */
export function freePort() {
  return Number(execFileSync('python3', [join(repoRoot, 'scripts', 'free-ports.py'), '1'], { encoding: 'utf8' }).trim());
}

/**
 * The gateway as a child process; `kill()` and `start()` again keep the same port (a restart). `args`: extra
 * command-line settings (e.g. `--Gateway:Cors:AllowedOrigins:0=…`); `log`: its log file's name in artifacts/browser.
 */
export class Gateway {
  constructor(port, upstreamUrl, { args = [], log = 'gateway.log' } = {}) {
    this.port = port;
    this.upstreamUrl = upstreamUrl;
    this.args = args;
    this.logName = log;
    this.url = `http://127.0.0.1:${port}`;
    this.child = null;
    this.starts = 0;
  }

  async start() {
    if (this.child) throw new Error('gateway already running');
    mkdirSync(logDir, { recursive: true });
    const out = openSync(join(logDir, this.logName), this.starts === 0 ? 'w' : 'a');
    this.starts++;
    const args = [
      gatewayDll,
      '--urls', this.url,
      '--Gateway:Upstreams:0:Id=local',
      `--Gateway:Upstreams:0:BaseUrl=${this.upstreamUrl}`,
      // The suite's own session store (SQLite), kept across the restart test like a real deployment's.
      `--Gateway:Store:DataDirectory=${join(repoRoot, '.dev', 'browser-gateway-data')}`,
      ...auth.gatewayArgs,
      ...this.args,
    ];
    // cwd = the project folder: the content root, whose wwwroot holds the built demo page.
    const child = spawn('dotnet', args, {
      cwd: join(repoRoot, 'src', 'Gateway'),
      env: { ...process.env, ASPNETCORE_ENVIRONMENT: 'Development', DOTNET_NOLOGO: '1' },
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    this.child = child;
    const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    this.exited = exited;
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    log(`gateway pid ${child.pid} on ${this.url} (start #${this.starts})`);

    const deadline = Date.now() + 60_000;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.child) {
        const { code, signal } = await exited;
        throw new Error(`gateway exited during start (code ${code}, signal ${signal}); see ${join(logDir, this.logName)}`);
      }

      try {
        // Ready to serve, and reading opencode's event stream (readiness alone says nothing of the upstreams).
        const ready = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2000) });
        const upstreams = ready.ok
          ? await fetch(`${this.url}/api/upstreams`, { headers: { 'x-api-key': auth.adminApiKey }, signal: AbortSignal.timeout(2000) })
          : ready;
        const statuses = upstreams.ok ? await upstreams.json() : null;
        if (statuses?.every((u) => u.connected)) {
          log(`gateway ready after ${(60_000 - (deadline - Date.now())) / 1000} s`);
          return;
        }

        last = `HTTP ${upstreams.status}: ${statuses ? JSON.stringify(statuses) : await upstreams.text()}`;
      } catch (e) {
        last = String(e.cause ?? e);
      }

      await new Promise((r) => setTimeout(r, 150));
    }

    throw new Error(`gateway not ready within 60 s: ${last}`);
  }

  get pid() {
    return this.child?.pid;
  }

  /** Kills the process (SIGKILL: a crash, no graceful close of the connections) and waits until it is gone. */
  async kill(signal = 'SIGKILL') {
    const child = this.child;
    if (!child) return;
    log(`gateway pid ${child.pid}: ${signal}`);
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Synchronous last resort (process exit): SIGKILL to exactly our pid. */
  killNow() {
    if (this.child?.pid) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

const gateways = new Set();

/** Starts a gateway on `port`, else E2E_GATEWAY_PORT, else a free port. */
export async function startGateway(upstreamUrl, port, options = {}) {
  // E2E_GATEWAY_PORT is for one gateway at a time: one started while another runs takes a free port.
  const envPort = process.env.E2E_GATEWAY_PORT && ![...gateways].some((g) => g.child) ? Number(process.env.E2E_GATEWAY_PORT) : undefined;
  const gateway = new Gateway(port ?? envPort ?? freePort(), upstreamUrl, options);
  gateways.add(gateway);
  await gateway.start();
  return gateway;
}

/** Stops everything this module started (graceful SIGTERM for the gateway, then opencode.sh stop). */
export async function stopAll() {
  for (const gateway of gateways) await gateway.kill('SIGTERM');
  gateways.clear();
  stopOpencode();
}

// Safety net: whatever way this process ends, leave nothing running.
function stopAllNow() {
  for (const gateway of gateways) gateway.killNow();
  gateways.clear();
  stopOpencode();
}

process.once('exit', stopAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    stopAllNow();
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[signal]);
  });
}

/** opencode's REST API: the text it stores for a session's assistant messages (text parts joined, in order). */
export async function storedAssistantText(opencodeUrl, sessionId) {
  const response = await fetch(`${opencodeUrl}/session/${sessionId}/message`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /session/${sessionId}/message: HTTP ${response.status}`);
  const messages = await response.json();
  return messages
    .filter((m) => m.info.role === 'assistant')
    .flatMap((m) => m.parts)
    .filter((p) => p.type === 'text' && !p.synthetic)
    .map((p) => p.text ?? '')
    .join('');
}

/** opencode's final text of every text part of a session, by part id (`GET /session/{id}/message`). */
export async function storedPartTexts(opencodeUrl, sessionId) {
  const response = await fetch(`${opencodeUrl}/session/${sessionId}/message`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /session/${sessionId}/message: HTTP ${response.status}`);
  const texts = new Map();
  for (const part of (await response.json()).flatMap((m) => m.parts)) {
    if (typeof part.text === 'string') texts.set(part.id, part.text);
  }

  return texts;
}

/** opencode's pending permission requests (`GET /permission`). */
export async function pendingPermissions(opencodeUrl) {
  const response = await fetch(`${opencodeUrl}/permission`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /permission: HTTP ${response.status}`);
  return response.json();
}

/** Waits until opencode holds a pending permission request of the session; returns them. */
export async function waitForPermission(opencodeUrl, sessionId, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const mine = (await pendingPermissions(opencodeUrl)).filter((p) => p.sessionID === sessionId);
    if (mine.length) return mine;
    if (Date.now() > deadline) throw new Error(`no permission request of ${sessionId} in opencode within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Answers a permission request through opencode's own API (`POST /permission/{id}/reply`). */
export async function replyPermission(opencodeUrl, requestId, reply) {
  const response = await fetch(`${opencodeUrl}/permission/${requestId}/reply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ reply }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`POST /permission/${requestId}/reply: HTTP ${response.status} ${await response.text()}`);
}

/** opencode's messages of a session as it stores them (`GET /session/{id}/message`): `[{info, parts}]`. */
export async function storedMessages(opencodeUrl, sessionId) {
  const response = await fetch(`${opencodeUrl}/session/${sessionId}/message`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /session/${sessionId}/message: HTTP ${response.status}`);
  return response.json();
}

/** opencode's pending questions (`GET /question`). */
export async function pendingQuestions(opencodeUrl) {
  const response = await fetch(`${opencodeUrl}/question`, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET /question: HTTP ${response.status}`);
  return response.json();
}

/** Sends a prompt straight to opencode and waits for its answer (`POST /session/{id}/message`). */
export async function promptOpencode(opencodeUrl, sessionId, text) {
  const response = await fetch(`${opencodeUrl}/session/${sessionId}/message`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ parts: [{ type: 'text', text }] }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`POST /session/${sessionId}/message: HTTP ${response.status} ${await response.text()}`);
  await response.arrayBuffer();
}
