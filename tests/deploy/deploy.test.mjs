// Tests of deploy/: the shipped nginx configs pass `nginx -t`, and the one-machine cluster of
// deploy/cluster/cluster.sh (Redis, PostgreSQL, the real opencode on the mock LLM, N gateway nodes, nginx) comes up,
// balances over every node, carries SignalR WebSockets (skipNegotiation) and unbuffered SSE, and its kill-node,
// term-node, start-node, redis-* and opencode-restart commands do what they say; `stop` leaves no process behind.
//
// Until the gateway's cluster mode lands, the nodes ignore ConnectionStrings:Redis and each holds its own upstream
// stream: these tests check the topology and the script, not cross-node behaviour.
//
// Env: DEPLOY_TEST_PORT_BASE (ports from there, see CLUSTER_PORT_BASE; default: free ports), DEPLOY_TEST_NODES
// (default 3), DEPLOY_TEST_STATE_DIR (default <repo>/.dev/cluster-test).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as signalR from '@microsoft/signalr';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CLUSTER = join(ROOT, 'deploy/cluster/cluster.sh');
const STATE_DIR = process.env.DEPLOY_TEST_STATE_DIR ?? join(ROOT, '.dev/cluster-test');
const NODES = Number(process.env.DEPLOY_TEST_NODES ?? 3);
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? 'nginx';

const clusterEnv = {
  ...process.env,
  CLUSTER_STATE_DIR: STATE_DIR,
  CLUSTER_NODES: String(NODES),
  // Request logs on the nodes: which node answered is read from the node's own log, not only from nginx.
  GATEWAY_NODE_ARGS: '--Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics=Information',
};
if (process.env.DEPLOY_TEST_PORT_BASE) clusterEnv.CLUSTER_PORT_BASE = process.env.DEPLOY_TEST_PORT_BASE;

/** Runs cluster.sh; resolves {code, stdout, stderr} (never rejects on a non-zero exit). */
function cluster(...args) {
  return new Promise((resolvePromise) => {
    execFile(CLUSTER, args, { env: clusterEnv, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 }, (error, stdout, stderr) => {
      resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function clusterOk(...args) {
  const result = await cluster(...args);
  assert.equal(result.code, 0, `cluster.sh ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
  return result;
}

async function readEnv() {
  const { stdout } = await clusterOk('env');
  const env = {};
  for (const line of stdout.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

// ---------------------------------------------------------------- processes
function alive(pid) {
  if (!/^[0-9]+$/.test(String(pid))) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** pid and all its descendants that are alive now. */
function processTree(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(entry);
    } catch {
      // gone meanwhile
    }
  }
  const tree = [];
  const walk = (p) => {
    if (!alive(p)) return;
    tree.push(String(p));
    for (const child of children.get(String(p)) ?? []) walk(child);
  };
  walk(pid);
  return tree;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------- HTTP helpers
/** GET through nginx; returns the status, the node nginx chose (X-Gateway-Upstream) and the probe id. */
/**
 * GET /healthz through nginx on a connection of its own (no keep-alive): a kept-alive connection can meet nginx closing
 * it, or an nginx worker that a reload is retiring, with its own round robin.
 */
function probe(env) {
  const id = randomUUID();
  return new Promise((resolvePromise, reject) => {
    const request = http.get(`${env.FRONT_URL}/healthz?probe=${id}`, { agent: false, timeout: 10_000 }, (response) => {
      response.resume();
      response.on('end', () => resolvePromise({ status: response.statusCode, upstream: response.headers['x-gateway-upstream'], id }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`probe ${id}: no answer within 10 s`)));
    request.on('error', reject);
  });
}

const nodePortOf = (env, n) => env[`NODE_${n}_PORT`];

function mintToken(signingKey, sub) {
  const b64url = (value) => Buffer.from(value).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub, iat: now, exp: now + 3600 }))}`;
  return `${input}.${createHmac('sha256', Buffer.from(signingKey, 'utf8')).update(input).digest('base64url')}`;
}

/** The text parts of a session as opencode stores them: Map partId → {role, text}. */
async function opencodeTexts(env, sessionId) {
  const response = await fetch(`${env.OPENCODE_URL}/session/${sessionId}/message`);
  assert.equal(response.status, 200);
  const texts = new Map();
  for (const message of await response.json()) {
    for (const part of message.parts) if (part.type === 'text') texts.set(part.id, { role: message.info.role, text: part.text });
  }
  return texts;
}

// ---------------------------------------------------------------- the suite
let env;

// Stops the cluster whatever happened (also on SIGINT/SIGTERM), so no process outlives the suite.
function stopClusterSync() {
  try {
    execFileSync(CLUSTER, ['stop', '--clean'], { env: clusterEnv, stdio: 'ignore', timeout: 180_000 });
  } catch {
    // reported by the test that stops it; this is the safety net
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopClusterSync();
    process.exit(130);
  });
}
after(() => {
  if (existsSync(join(STATE_DIR, 'cluster.conf'))) stopClusterSync();
});

test('the compose nginx.conf passes nginx -t (service names replaced by loopback addresses)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'deploy-nginx-'));
  try {
    // What this machine's nginx cannot check: Docker's service names (they do not resolve here) and `resolve`
    // (nginx >= 1.27.3; the compose file uses nginx:1.28, this machine has an older one).
    const config = readFileSync(join(ROOT, 'deploy/docker/nginx.conf'), 'utf8')
      .replace(/server gateway-\d+:8080 resolve /g, 'server 127.0.0.1:9 ')
      .replace('include /etc/nginx/gateway-proxy.conf;', `include ${join(ROOT, 'deploy/nginx/gateway-proxy.conf')};`)
      .replace('listen 80;', 'listen 127.0.0.1:9;');
    assert.doesNotMatch(config, /gateway-\d+:8080/, 'every upstream server line was rewritten');
    writeFileSync(join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid;\n${config}`);
    execFileSync(NGINX, ['-t', '-q', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the shared proxy settings carry WebSockets and unbuffered SSE, and skip failed or stopping nodes', () => {
  // nginx 1.22 here streamed SSE in time even with proxy_buffering on (tried), so the SSE test below cannot catch a
  // lost `proxy_buffering off`; other versions and settings (gzip, larger buffers) batch events. Guard it here.
  const directives = readFileSync(join(ROOT, 'deploy/nginx/gateway-proxy.conf'), 'utf8')
    .split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
  for (const expected of [
    'proxy_http_version 1.1;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Connection $connection_upgrade;',
    'proxy_buffering off;',
    'proxy_next_upstream error timeout http_503;',
  ]) assert.ok(directives.includes(expected), `gateway-proxy.conf has '${expected}'`);
  const readTimeout = directives.find((d) => d.startsWith('proxy_read_timeout '));
  assert.ok(readTimeout && parseInt(readTimeout.split(' ')[1], 10) >= 60, 'proxy_read_timeout above the 15 s pings with room to spare');
  const withoutComments = (path) => readFileSync(path, 'utf8').split('\n').map((l) => l.replace(/#.*/, '')).join('\n');
  for (const config of [withoutComments(join(ROOT, 'deploy/docker/nginx.conf')), withoutComments(CLUSTER)]) {
    assert.match(config, /map \\?\$http_upgrade \\?\$connection_upgrade/, 'the Connection header map is defined');
    assert.match(config, /include [^;]*gateway-proxy\.conf;/, 'the shared settings are included');
    assert.doesNotMatch(config, /\b(ip_hash|sticky|hash \\?\$)/, 'no sticky sessions');
  }
});

test('start brings up every node and nginx, and is idempotent', { timeout: 600_000 }, async () => {
  const first = await clusterOk('start');
  env = await readEnv();
  assert.equal(first.stdout.trim().split('\n').at(-1), env.FRONT_URL);
  assert.equal(Number(env.NODE_COUNT), NODES);
  for (let n = 1; n <= NODES; n++) {
    assert.ok(alive(env[`NODE_${n}_PID`]), `node ${n} pid ${env[`NODE_${n}_PID`]} is alive`);
    const health = await fetch(`${env[`NODE_${n}_URL`]}/healthz`);
    assert.equal(health.status, 200);
  }
  for (const key of ['REDIS_PID', 'PG_PID', 'OPENCODE_PID', 'MOCK_PID', 'NGINX_PID']) assert.ok(alive(env[key]), `${key} is alive`);
  assert.equal((await cluster('status')).code, 0);

  const again = await clusterOk('start');
  assert.equal(again.stdout.trim().split('\n').at(-1), env.FRONT_URL);
  const envAgain = await readEnv();
  for (let n = 1; n <= NODES; n++) assert.equal(envAgain[`NODE_${n}_PID`], env[`NODE_${n}_PID`], 'a second start leaves running nodes alone');
  assert.equal(envAgain.NGINX_PID, env.NGINX_PID);
});

test('nginx balances /healthz round robin over every node (seen by nginx and in each node\'s own log)', async () => {
  const portToNode = new Map();
  for (let n = 1; n <= NODES; n++) portToNode.set(`127.0.0.1:${nodePortOf(env, n)}`, n);
  // A node nginx failed to reach (a node started a moment ago) is out of rotation for fail_timeout (5 s): wait until
  // every node is in it again, then measure.
  await waitFor('every node in rotation', async () => {
    const window = [];
    for (let i = 0; i < NODES; i++) window.push(portToNode.get((await probe(env)).upstream));
    return new Set(window).size === NODES;
  }, 15_000);
  const probes = [];
  for (let i = 0; i < 3 * NODES; i++) probes.push(await probe(env));
  assert.ok(probes.every((p) => p.status === 200));

  for (let i = 0; i + NODES <= probes.length; i += NODES) {
    const nodes = new Set(probes.slice(i, i + NODES).map((p) => portToNode.get(p.upstream)));
    assert.equal(nodes.size, NODES, `requests ${i}..${i + NODES - 1} went to ${[...nodes]}: round robin reaches every node`);
  }

  // Each request appears in the log of the node nginx named, and only there.
  await waitFor('the probes in the node logs', () => probes.every((p) => readFileSync(env[`NODE_${portToNode.get(p.upstream)}_LOG`], 'utf8').includes(p.id)), 10_000);
  for (const p of probes) {
    for (let n = 1; n <= NODES; n++) {
      const inLog = readFileSync(env[`NODE_${n}_LOG`], 'utf8').includes(p.id);
      assert.equal(inLog, n === portToNode.get(p.upstream), `probe ${p.id} in node ${n}'s log`);
    }
  }
});

test('a SignalR client (WebSockets, skipNegotiation) streams an answer through nginx, byte-identical to opencode', { timeout: 120_000 }, async () => {
  const token = mintToken(env.SIGNING_KEY, 'deploy-test');
  const connection = new signalR.HubConnectionBuilder()
    // Every event whole (?events=full): this client applies SessionEvents only, not compact deltas.
    .withUrl(`${env.FRONT_URL}/hubs/session?events=full`, {
      transport: signalR.HttpTransportType.WebSockets,
      skipNegotiation: true,
      accessTokenFactory: () => token,
    })
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  const received = [];
  connection.on('SessionEvent', (evt) => {
    received.push(evt);
  });
  await connection.start();
  try {
    const session = await connection.invoke('CreateSession', { title: 'deploy test' });
    const join = await connection.invoke('Join', { sessionId: session.id });
    // Client rules: apply events after the join position, each exactly seq + 1; check the text after every event.
    let seq = join.seq;
    let applied = 0;
    const texts = new Map();
    const history = [];
    let idle = false;
    const applyPending = () => {
      for (const evt of received.splice(0)) {
        if (evt.sessionId !== session.id || evt.epoch !== join.epoch || evt.seq <= seq) continue;
        assert.equal(evt.seq, seq + 1, `no gap in the stream (got seq ${evt.seq} after ${seq})`);
        seq = evt.seq;
        applied++;
        if (evt.type === 'part.updated' && evt.part?.type === 'text' && typeof evt.part.text === 'string') {
          texts.set(evt.partId, evt.part.text);
        } else if (evt.type === 'part.delta' && evt.field === 'text') {
          const text = texts.get(evt.partId) ?? '';
          assert.ok(evt.offset <= text.length, `delta offset ${evt.offset} within the known text (${text.length})`);
          const merged = text.slice(0, evt.offset) + evt.delta;
          texts.set(evt.partId, merged.length >= text.length ? merged : text);
        } else if (evt.type === 'status') {
          idle = evt.status?.type === 'idle';
        }
        for (const [partId, text] of texts) history.push([partId, text]);
      }
    };

    await connection.invoke('Prompt', { sessionId: session.id, text: 'deploy test tokens=30 delay=20' });
    await waitFor('the answer to end (status idle)', () => {
      applyPending();
      return idle && texts.size > 0;
    }, 60_000);

    const final = await opencodeTexts(env, session.id);
    const answer = [...final.values()].filter((p) => p.role === 'assistant').map((p) => p.text).join('');
    assert.match(answer, /t1 .*t30 $/, 'opencode stored the whole answer');
    for (const [partId, { role, text }] of final) {
      if (role === 'assistant') assert.equal(texts.get(partId), text, `assistant part ${partId} byte-identical to opencode`);
    }
    for (const [partId, text] of texts) assert.equal(text, final.get(partId)?.text, `part ${partId} byte-identical to opencode`);
    for (const [partId, text] of history) {
      const stored = final.get(partId)?.text ?? '';
      assert.ok(stored.startsWith(text), `every text the client showed was a prefix of opencode's (part ${partId}): ${JSON.stringify(text)} vs ${JSON.stringify(stored)}`);
    }
    assert.ok(applied > 30, `${applied} events applied`);
  } finally {
    await connection.stop();
  }
  // The socket went through nginx as an upgraded HTTP/1.1 request (logged when it closed, without the query).
  await waitFor('the WebSocket in the access log', () => /"GET \/hubs\/session HTTP\/1\.1" 101 /.test(readFileSync(env.NGINX_ACCESS_LOG, 'utf8')), 10_000);
  assert.doesNotMatch(readFileSync(env.NGINX_ACCESS_LOG, 'utf8'), /negotiate/, 'no negotiate request (skipNegotiation)');
});

test('/api/chat SSE through nginx arrives while it is written, not in one burst', { timeout: 120_000 }, async () => {
  const token = mintToken(env.SIGNING_KEY, 'deploy-test');
  // 40 tokens, 50 ms apart: about 2 s of answer.
  const response = await fetch(`${env.FRONT_URL}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    body: JSON.stringify({ message: 'sse through nginx tokens=40 delay=50' }),
    signal: AbortSignal.timeout(90_000),
  });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
  const deltaTimes = [];
  let done = false;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    const now = Date.now();
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (/^event: delta$/m.test(event)) deltaTimes.push(now);
      if (/^event: done$/m.test(event)) done = true;
    }
    if (done) break;
  }
  assert.ok(done, 'the stream ended with a done event');
  assert.ok(deltaTimes.length >= 10, `${deltaTimes.length} delta events`);
  const spread = deltaTimes.at(-1) - deltaTimes[0];
  assert.ok(spread >= 1000, `deltas arrived over ${spread} ms (a buffering proxy delivers them in one burst at the end)`);
});

test('kill-node: SIGKILL, the node is gone, nginx answers from the others; start-node brings it back on its port', { timeout: 180_000 }, async () => {
  const pid = env.NODE_1_PID;
  await clusterOk('kill-node', '1');
  assert.ok(!alive(pid), `node 1 (pid ${pid}) is gone`);
  assert.equal((await cluster('status')).code, 1, 'status reports a stopped node');
  const killedUpstream = `127.0.0.1:${nodePortOf(env, 1)}`;
  for (let i = 0; i < 2 * NODES; i++) {
    const p = await probe(env);
    assert.equal(p.status, 200, 'nginx retries the next node');
    assert.notEqual(p.upstream?.split(', ').at(-1), killedUpstream, 'the answer came from a live node');
  }

  const { stdout } = await clusterOk('start-node', '1');
  assert.equal(stdout.trim().split('\n').at(-1), env.NODE_1_URL);
  const after = await readEnv();
  assert.notEqual(after.NODE_1_PID, pid);
  assert.ok(alive(after.NODE_1_PID));
  assert.equal(after.NODE_1_URL, env.NODE_1_URL);
  // Back in rotation once nginx's fail_timeout (5 s) has passed.
  await waitFor('node 1 to answer through nginx again', async () => (await probe(env)).upstream === killedUpstream, 30_000);
  env = after;
});

test('term-node: SIGTERM, waits for a graceful exit; start-node restarts it', { timeout: 180_000 }, async () => {
  const pid = env.NODE_2_PID;
  await clusterOk('term-node', '2');
  assert.ok(!alive(pid), `node 2 (pid ${pid}) exited`);
  assert.match(readFileSync(env.NODE_2_LOG, 'utf8'), /Application is shutting down/);
  await clusterOk('start-node', '2');
  env = await readEnv();
  assert.ok(alive(env.NODE_2_PID));
  assert.equal((await cluster('status')).code, 0);
});

test('redis-stop / redis-start / redis-restart: the same port and data (AOF keeps what was written)', { timeout: 120_000 }, async () => {
  assert.equal(env.REDIS_AOF, '1');
  const redisCli = (...args) => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', env.REDIS_PORT, ...args], { encoding: 'utf8' }).trim();
  const value = randomUUID();
  assert.equal(redisCli('SET', 'deploy-test', value), 'OK');

  const pid = env.REDIS_PID;
  await clusterOk('redis-stop');
  assert.ok(!alive(pid), 'redis-server is gone');
  assert.throws(() => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', env.REDIS_PORT, 'PING'], { stdio: 'pipe' }));
  assert.equal((await cluster('status')).code, 1);

  await clusterOk('redis-start');
  env = await readEnv();
  assert.notEqual(env.REDIS_PID, pid);
  assert.equal(redisCli('PING'), 'PONG');
  assert.equal(redisCli('GET', 'deploy-test'), value);

  const before = env.REDIS_PID;
  await clusterOk('redis-restart');
  env = await readEnv();
  assert.ok(!alive(before) && alive(env.REDIS_PID));
  assert.equal(redisCli('GET', 'deploy-test'), value);
});

test('opencode-restart: a new opencode process on the same port', { timeout: 120_000 }, async () => {
  const pid = env.OPENCODE_PID;
  await clusterOk('opencode-restart');
  env = await readEnv();
  assert.ok(!alive(pid));
  assert.ok(alive(env.OPENCODE_PID));
  assert.equal((await fetch(`${env.OPENCODE_URL}/global/health`)).status, 200);
});

test('stop --clean stops every process it started (checked by pid, with their children) and removes the state', { timeout: 300_000 }, async () => {
  env = await readEnv();
  const pids = [];
  for (const key of Object.keys(env).filter((k) => k.endsWith('_PID'))) {
    assert.ok(alive(env[key]), `${key} is alive before stop`);
    pids.push(...processTree(env[key]).map((pid) => [key, pid]));
  }
  assert.ok(pids.length > NODES + 5, `${pids.length} processes (with nginx workers, PostgreSQL's backends)`);
  const pgDir = dirname(env.PG_LOG);

  await clusterOk('stop', '--clean');
  const left = pids.filter(([, pid]) => alive(pid));
  assert.deepEqual(left, [], 'no process left behind');
  assert.ok(!existsSync(STATE_DIR), `${STATE_DIR} removed`);
  assert.ok(!existsSync(pgDir), `${pgDir} removed`);
  assert.equal((await cluster('status')).code, 1, 'status of a stopped cluster fails');
});
