// CORS in a real browser: a page served from a second origin calls the gateway's API and connects to its hub with
// @microsoft/signalr (negotiate, then WebSockets), streaming an answer from the real opencode. With the page's origin
// in Gateway:Cors:AllowedOrigins it works; with the origin left out, Chromium refuses the calls and the page sees it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auth } from './lib/auth.mjs';
import { launchBrowser, mockAnswer } from './lib/browser.mjs';
import { startSecondOrigin } from './lib/second-origin.mjs';
import { buildAll, startGateway, startOpencode, stopAll, storedAssistantText } from './lib/stack.mjs';

/**
 * Runs in the page: GET /api/sessions, then over the hub CreateSession, Join, Prompt, and applies every SessionEvent
 * to a model of the answer (assistant text parts, by offset), recording the text after each event, until idle.
 */
async function streamFromPage({ gatewayUrl, token, prompt }) {
  const result = { api: null, apiError: null, sessionId: null, texts: [], error: null };
  try {
    const response = await fetch(`${gatewayUrl}/api/sessions`, { headers: { authorization: `Bearer ${token}` } });
    result.api = { status: response.status, body: await response.json() };
  } catch (e) {
    result.apiError = String(e?.message ?? e);
  }

  let connection;
  try {
    connection = new signalR.HubConnectionBuilder()
      // Every event whole (?events=full): this page applies SessionEvents only, not compact deltas.
      .withUrl(`${gatewayUrl}/hubs/session?events=full`, {
        accessTokenFactory: () => token,
        transport: signalR.HttpTransportType.WebSockets,
      })
      .configureLogging(signalR.LogLevel.None)
      .build();
    const roles = new Map();
    const parts = new Map(); // partId -> {messageId, type, text}, in order of appearance
    const text = () =>
      [...parts.values()].filter((p) => p.type === 'text' && roles.get(p.messageId) === 'assistant').map((p) => p.text).join('');
    let busy = false;
    const done = new Promise((resolve, reject) => {
      connection.onclose((e) => reject(e ?? new Error('connection closed')));
      connection.on('SessionEvent', (evt) => {
        if (evt.type === 'message.updated') roles.set(evt.messageId, evt.info.role);
        if (evt.type === 'part.updated') {
          const known = parts.get(evt.partId);
          const part = { messageId: evt.messageId, type: evt.part.type, text: evt.part.text ?? known?.text ?? '' };
          parts.set(evt.partId, part);
        }

        if (evt.type === 'part.delta' && evt.field === 'text') {
          const part = parts.get(evt.partId) ?? { messageId: evt.messageId, type: 'text', text: '' };
          if (evt.offset > part.text.length) reject(new Error(`delta at ${evt.offset} past ${part.text.length}`));
          part.text = part.text.slice(0, evt.offset) + evt.delta + part.text.slice(evt.offset + evt.delta.length);
          parts.set(evt.partId, part);
        }

        result.texts.push(text());
        if (evt.type === 'status' && evt.status.type === 'busy') busy = true;
        if (evt.type === 'status' && evt.status.type === 'idle' && busy) resolve();
      });
    });
    await connection.start();
    const session = await connection.invoke('CreateSession', { title: 'cors' });
    result.sessionId = session.id;
    await connection.invoke('Join', { sessionId: session.id });
    await connection.invoke('Prompt', { sessionId: session.id, text: prompt });
    await done;
  } catch (e) {
    result.error = String(e?.message ?? e);
  } finally {
    await connection?.stop().catch(() => undefined);
  }

  return result;
}

describe('CORS: a page on another origin', { concurrency: false }, () => {
  let opencode;
  let browser;
  let app;

  before(async () => {
    buildAll();
    opencode = startOpencode();
    app = await startSecondOrigin(Number(process.env.E2E_APP_PORT ?? 0));
    browser = await launchBrowser();
  }, { timeout: 150_000 });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await app?.close();
    await stopAll();
  });

  async function openPage() {
    const context = await browser.newContext();
    const page = await context.newPage();
    const console = [];
    page.on('console', (m) => console.push(m.text()));
    await page.goto(`${app.origin}/`);
    return { page, console, close: () => context.close() };
  }

  it('streams an answer through the hub when its origin is allowed', { timeout: 90_000 }, async () => {
    const gateway = await startGateway(opencode, undefined, {
      args: [`--Gateway:Cors:AllowedOrigins:0=${app.origin}`],
      log: 'gateway-cors-allowed.log',
    });
    const tab = await openPage();
    try {
      const tokens = 40;
      const result = await tab.page.evaluate(streamFromPage, {
        gatewayUrl: gateway.url,
        token: auth.token,
        prompt: `cors tokens=${tokens} delay=10`,
      });

      assert.equal(result.apiError, null, `the page's API call failed: ${result.apiError}\n${tab.console.join('\n')}`);
      assert.equal(result.error, null, `the page's hub connection failed: ${result.error}\n${tab.console.join('\n')}`);
      assert.equal(result.api.status, 200);
      assert.ok(Array.isArray(result.api.body.items), 'GET /api/sessions answered its list');
      const final = mockAnswer(tokens);
      assert.equal(result.texts.at(-1), final);
      for (const text of result.texts) assert.ok(final.startsWith(text), `not a prefix of the answer: '${text}'`);
      assert.ok(new Set(result.texts).size > tokens / 2, 'the answer streamed token by token');
      assert.equal(await storedAssistantText(opencode, result.sessionId), final);
    } finally {
      await tab.close();
      await gateway.kill('SIGTERM');
    }
  });

  it('is refused by the browser when its origin is not in the list', { timeout: 90_000 }, async () => {
    const gateway = await startGateway(opencode, undefined, {
      args: ['--Gateway:Cors:AllowedOrigins:0=http://localhost:1'],
      log: 'gateway-cors-refused.log',
    });
    const tab = await openPage();
    try {
      // The gateway does answer (the preflight, without Access-Control-Allow-Origin for this origin)...
      const preflight = await fetch(`${gateway.url}/api/sessions`, {
        method: 'OPTIONS',
        headers: { origin: app.origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), null);

      // ...and the browser refuses to let the page see anything.
      const result = await tab.page.evaluate(streamFromPage, {
        gatewayUrl: gateway.url,
        token: auth.token,
        prompt: 'refused tokens=5',
      });

      assert.equal(result.api, null, 'the page must not read /api/sessions');
      assert.match(result.apiError, /Failed to fetch/);
      assert.equal(result.sessionId, null, 'the page must not reach the hub');
      assert.match(result.error, /Failed to complete negotiation with the server: TypeError: Failed to fetch/);
      assert.ok(
        tab.console.some((line) => line.includes('has been blocked by CORS policy')),
        `Chromium reports the CORS refusal; console:\n${tab.console.join('\n')}`,
      );
    } finally {
      await tab.close();
      await gateway.kill('SIGTERM');
    }
  });
});
