// The Next.js example (examples/nextjs) in headless Chromium: built with `next build`, run with `next start` on its own
// origin, talking to the gateway process on another (CORS), in front of the real opencode with the mock LLM. Its demo
// login gets gateway tokens minted by the example's own server from the signing key in that server's environment.
// Run with ./run.sh (writes artifacts/test-results/browser-nextjs.steps.json).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { auth, mintToken } from './lib/auth.mjs';
import { launchBrowser, mockAnswer, screenshotDir } from './lib/browser.mjs';
import { buildNextApp, startNextApp, stopNextApps } from './lib/nextjs-app.mjs';
import { buildAll, freePort, startGateway, startOpencode, stopAll, storedAssistantText } from './lib/stack.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const sel = {
  listStatus: '[data-testid="list-status"]',
  sessionItem: '[data-testid="session-item"]',
  newSession: '[data-testid="new-session"]',
  newAiChat: '[data-testid="new-ai-chat"]',
  chatStatus: '[data-testid="chat-status"]',
  connection: '[data-testid="connection"]',
  input: '[data-testid="prompt-input"]',
  send: '[data-testid="send-button"]',
  message: '[data-testid="message"]',
  assistantText: '[data-testid="message"][data-role="assistant"] [data-testid="text-part"]',
};

/** The text the page shows for the assistant (its text parts, in order). */
function assistantText(page) {
  return page.evaluate((s) => [...document.querySelectorAll(s)].map((n) => n.textContent).join(''), sel.assistantText);
}

/** Waits until the assistant text ends with `last` and the chat status is `ready`. */
async function waitAnswerDone(page, last, timeout = 40_000) {
  await page.waitForFunction(
    ({ s, status, last }) =>
      [...document.querySelectorAll(s)].map((n) => n.textContent).join('').endsWith(last) &&
      document.querySelector(status)?.dataset.status === 'ready',
    { s: sel.assistantText, status: sel.chatStatus, last },
    { timeout, polling: 100 },
  );
}

/** Samples the assistant text until it contains `marker`; asserts every sample is a prefix of `final`. */
async function sampleUntil(page, final, marker, timeout = 30_000) {
  const samples = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    const text = await assistantText(page);
    samples.push(text);
    assert.ok(final.startsWith(text), `the page showed text that is not a prefix of the answer: …${text.slice(-40)}`);
    if (text.includes(marker)) return samples;
    assert.ok(Date.now() < deadline, `'${marker}' not shown within ${timeout} ms (${text.length} chars)`);
    await sleep(50);
  }
}

/** Asserts the page kept streaming after a reload: several distinct partial texts longer than before it. */
function assertStreamedAfterReload(samples, atReload, final) {
  const partial = new Set(samples.map((text) => text.length).filter((n) => n > atReload.length && n < final.length));
  assert.ok(partial.size >= 3, `the answer should go on streaming into the reloaded page; partial lengths seen: ${[...partial]}`);
}

/** Records, from now on, every chat status the page shows and every user message's data-optimistic. */
async function recordChat(page) {
  await page.evaluate(({ status, message }) => {
    const seen = { statuses: [document.querySelector(status).dataset.status], optimistic: [] };
    window.__chat = seen;
    new MutationObserver(() => {
      const current = document.querySelector(status)?.dataset.status;
      if (current && seen.statuses.at(-1) !== current) seen.statuses.push(current);
      for (const node of document.querySelectorAll(`${message}[data-role="user"]`)) {
        const flag = `${node.textContent}|${node.dataset.optimistic}`;
        if (!seen.optimistic.includes(flag)) seen.optimistic.push(flag);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }, { status: sel.chatStatus, message: sel.message });
}

const gatewayPort = process.env.E2E_GATEWAY_PORT ? Number(process.env.E2E_GATEWAY_PORT) : undefined;
/** User names of this run: the suite's gateway store outlives a run (its opencode does not). */
const run = Date.now().toString(36);
const userName = (name) => `next-${name}-${run}`;

describe('Next.js example (examples/nextjs) in headless Chromium', { concurrency: false }, () => {
  let opencode;
  let gateway;
  let app;
  let browser;
  const contexts = [];
  /** [user, page] of the running test, screenshotted into artifacts/screenshots/failures/ when it fails. */
  let pages = [];

  beforeEach(() => {
    pages = [];
  });

  afterEach(async (t) => {
    if (!t.passed) {
      const dir = join(screenshotDir, 'failures');
      mkdirSync(dir, { recursive: true });
      const slug = t.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 60);
      await Promise.all(pages.map(([user, page]) => page.screenshot({ path: join(dir, `nextjs-${slug}-${user}.png`) }).catch(() => undefined)));
    }
  });

  before(async () => {
    buildAll();
    buildNextApp();
    opencode = startOpencode();
    const appPort = Number(process.env.E2E_NEXT_PORT ?? freePort());
    gateway = await startGateway(opencode, gatewayPort, {
      args: [`--Gateway:Cors:AllowedOrigins:0=http://127.0.0.1:${appPort}`],
      log: 'gateway-nextjs.log',
    });
    app = await startNextApp({ port: appPort, gatewayUrl: gateway.url, signingKey: auth.signingKey });
    browser = await launchBrowser();
  }, { timeout: 400_000 });

  after(async () => {
    await Promise.all(contexts.map((c) => c.close().catch(() => undefined)));
    await browser?.close().catch(() => undefined);
    await stopNextApps();
    await stopAll();
  });

  /** A new window (browser context) logged in to the example as `user`, on the sessions list. */
  async function loggedIn(user) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(context);
    const page = await context.newPage();
    pages.push([user, page]);
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e.stack ?? e)));
    await page.goto(`${app.url}/`);
    await page.waitForURL(`${app.url}/login`);
    await page.fill('[data-testid="login-name"]', user);
    await page.click('[data-testid="login-submit"]');
    await page.waitForURL(`${app.url}/`);
    await page.waitForSelector(`${sel.listStatus}[data-status="ready"]`, { timeout: 20_000 });
    return { context, page, errors };
  }

  it('the sessions list shows a new session to its owner only; no signing key in the browser', { timeout: 90_000 }, async () => {
    const alice = await loggedIn(userName('alice'));
    const scripts = new Map();
    alice.page.on('response', async (response) => {
      if (/\.(js|css)(\?|$)/.test(response.url())) scripts.set(response.url(), await response.text().catch(() => ''));
    });
    await alice.page.click(sel.newSession);
    await alice.page.waitForURL(/\/chat\/ses_/, { timeout: 20_000 });
    const sessionId = alice.page.url().split('/chat/')[1];
    await alice.page.waitForSelector(`${sel.chatStatus}[data-status="ready"]`, { timeout: 20_000 });

    await alice.page.goto(`${app.url}/`);
    await alice.page.waitForSelector(`${sel.sessionItem}[data-session-id="${sessionId}"]`, { timeout: 20_000 });

    const bob = await loggedIn(userName('bob'));
    const bobsSessions = await bob.page.$$eval(sel.sessionItem, (nodes) => nodes.map((n) => n.dataset.sessionId));
    assert.ok(!bobsSessions.includes(sessionId), "another user's list does not show the session");

    // The browser holds short-lived tokens for its own user, never the key that signs them.
    const { token, expiresAt } = await alice.page.evaluate(() => fetch('/api/gateway-token').then((r) => r.json()));
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.sub, userName('alice'));
    assert.ok(claims.exp * 1000 === expiresAt && claims.exp - claims.iat <= 600, `short-lived: ${JSON.stringify(claims)}`);
    const html = await alice.page.content();
    assert.ok(scripts.size > 0, 'the page loaded its scripts');
    for (const [url, body] of [['the page', html], ...scripts]) {
      assert.ok(!body.includes(auth.signingKey), `${url} contains the signing key`);
    }

    mkdirSync(screenshotDir, { recursive: true });
    await alice.page.screenshot({ path: join(screenshotDir, 'nextjs-sessions.png') });
    const cookies = await alice.context.cookies(app.url);
    assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly]), [['demo_login', true]]);
    assert.deepEqual([...alice.errors, ...bob.errors], []);
  });

  it('the SignalR chat page shows the prompt at once, streams the answer, and survives a reload mid-answer', { timeout: 120_000 }, async (t) => {
    const { page, errors } = await loggedIn(userName('carol'));
    await page.click(sel.newSession);
    await page.waitForURL(/\/chat\/ses_/, { timeout: 20_000 });
    const sessionId = page.url().split('/chat/')[1];
    await page.waitForSelector(`${sel.chatStatus}[data-status="ready"]`, { timeout: 20_000 });
    await page.waitForSelector(`${sel.connection}[data-state="connected"]`);

    const tokens = 300;
    const final = mockAnswer(tokens);
    const prompt = `next reload tokens=${tokens} delay=15`;
    await recordChat(page);
    await page.fill(sel.input, prompt);
    await page.click(sel.send);
    const before = await sampleUntil(page, final, 't40 ');
    const seen = await page.evaluate(() => window.__chat);
    assert.deepEqual(seen.optimistic.slice(0, 2), [`${prompt}|true`, `${prompt}|false`],
      `the prompt shows at once as an optimistic message, then as opencode's: ${JSON.stringify(seen.optimistic)}`);
    assert.deepEqual(seen.statuses.slice(0, 3), ['ready', 'submitted', 'streaming'], `statuses: ${seen.statuses.join(' → ')}`);

    const atReload = await assistantText(page);
    await page.reload();
    await page.waitForSelector(`${sel.connection}[data-state="connected"]`, { timeout: 20_000 });
    const afterReload = await sampleUntil(page, final, 't150 ');
    assert.ok(!atReload.endsWith(`t${tokens} `), 'the reload happens while the answer still streams');
    assertStreamedAfterReload(afterReload, atReload, final);
    await waitAnswerDone(page, `t${tokens} `);

    const end = await assistantText(page);
    assert.equal(end, final);
    assert.equal(await storedAssistantText(opencode, sessionId), end, "the page's text equals opencode's stored text");
    mkdirSync(screenshotDir, { recursive: true });
    await page.screenshot({ path: join(screenshotDir, 'nextjs-signalr-chat.png') });
    const users = await page.$$eval(`${sel.message}[data-role="user"]`, (nodes) => nodes.map((n) => [n.textContent, n.dataset.optimistic]));
    assert.deepEqual(users, [[prompt, 'false']], 'after the reload: the one user message, from opencode');
    assert.deepEqual(errors, []);
    t.diagnostic(`${before.length} samples before the reload (at ${atReload.length} chars), ${afterReload.length} after; statuses ${seen.statuses.join(' → ')}`);
  });

  it('the useChat page streams an answer and resumes it after a reload mid-answer', { timeout: 120_000 }, async (t) => {
    // /api/ai-sdk/chat comes with the gateway's AI SDK endpoint; a gateway without it answers a bare 404 here.
    const probe = await fetch(`${gateway.url}/api/ai-sdk/chat/probe/stream`, { headers: { authorization: `Bearer ${auth.token}` } });
    const probeBody = await probe.text();
    if (probe.status === 404 && !probeBody.includes('"code"')) {
      t.skip('this gateway has no /api/ai-sdk/chat endpoint');
      return;
    }

    const user = userName('dave');
    const { page, errors } = await loggedIn(user);
    await page.click(sel.newAiChat);
    await page.waitForURL(/\/ai\/chat-/, { timeout: 20_000 });
    await page.waitForSelector(`${sel.chatStatus}[data-status="ready"]`, { timeout: 20_000 });

    const tokens = 300;
    const final = mockAnswer(tokens);
    await page.fill(sel.input, `usechat reload tokens=${tokens} delay=15`);
    await page.click(sel.send);
    const before = await sampleUntil(page, final, 't40 ');
    const atReload = await assistantText(page);
    await page.reload();
    const afterReload = await sampleUntil(page, final, 't150 ');
    assert.ok(!atReload.endsWith(`t${tokens} `), 'the reload happens while the answer still streams');
    assertStreamedAfterReload(afterReload, atReload, final);
    await waitAnswerDone(page, `t${tokens} `);

    const end = await assistantText(page);
    assert.equal(end, final);
    mkdirSync(screenshotDir, { recursive: true });
    await page.screenshot({ path: join(screenshotDir, 'nextjs-usechat.png') });
    // The chat's session: the one session of this user (created by the gateway for the new chat id).
    const list = await fetch(`${gateway.url}/api/sessions`, { headers: { authorization: `Bearer ${mintToken(user)}` } }).then((r) => r.json());
    assert.equal(list.items.length, 1, `one session for the chat: ${JSON.stringify(list.items)}`);
    assert.equal(await storedAssistantText(opencode, list.items[0].sessionId), end, "the page's text equals opencode's stored text");
    assert.deepEqual(errors, []);
    t.diagnostic(`${before.length} samples before the reload (at ${atReload.length} chars), ${afterReload.length} after`);
  });
});
