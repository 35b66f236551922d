// Browser end-to-end suite: the demo chat page (clients/demo, served by the gateway at /) in headless Chromium,
// against the gateway run as its own process in front of the real opencode with the mock LLM (deploy/dev).
// Run with ./run.sh (installs the npm deps, writes artifacts/test-results/browser.steps.json).
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assistantText,
  badgeStates,
  horizontalOverflow,
  launchBrowser,
  mockAnswer,
  newSession,
  recordBadgeStates,
  recordShownText,
  screenshotDir,
  sel,
  sendPrompt,
  shownTextViolations,
  waitAnswerDone,
  waitConnected,
  withTabs,
} from './lib/browser.mjs';
import { startUpstreamProxy } from './lib/upstream-proxy.mjs';
import {
  buildAll,
  pendingPermissions,
  replyPermission,
  repoRoot,
  startGateway,
  startOpencode,
  stopAll,
  storedAssistantText,
  storedPartTexts,
  waitForPermission,
} from './lib/stack.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('demo chat page in headless Chromium', { concurrency: false }, () => {
  let opencode;
  let gateway;
  let browser;

  before(async () => {
    buildAll();
    opencode = startOpencode();
    gateway = await startGateway(opencode);
    browser = await launchBrowser();
  }, { timeout: 150_000 });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await stopAll();
  });

  it('two tabs on one session show the same answer streaming token by token', { timeout: 60_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      // Tab A in the default form (compact deltas, JSON), tab B in MessagePack.
      const a = await tabs.open(gateway.url);
      const sessionId = await newSession(a);
      const b = await tabs.open(gateway.url, { session: sessionId, protocol: 'msgpack' });
      const tokens = 200;
      await sendPrompt(a, `two tabs tokens=${tokens} delay=20`);

      // Sample both tabs' text while the answer streams, until both show the last token.
      const final = mockAnswer(tokens);
      const samples = [];
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [ta, tb] = await Promise.all([assistantText(a), assistantText(b)]);
        samples.push([ta, tb]);
        if (ta.endsWith(`t${tokens} `) && tb.endsWith(`t${tokens} `)) break;
        assert.ok(Date.now() < deadline, `answer not complete in both tabs within 30 s: ${ta.length} / ${tb.length} chars`);
        await sleep(120);
      }

      await Promise.all([waitAnswerDone(a, `t${tokens} `), waitAnswerDone(b, `t${tokens} `)]);
      const [endA, endB] = await Promise.all([assistantText(a), assistantText(b)]);
      for (const [name, i] of [['tab A', 0], ['tab B', 1]]) {
        const lengths = samples.map((s) => s[i].length);
        const partial = new Set(lengths.filter((n) => n > 0 && n < final.length));
        assert.ok(partial.size >= 5, `${name} should grow during streaming; distinct partial lengths: ${[...partial]}`);
        for (let k = 1; k < lengths.length; k++) {
          assert.ok(lengths[k] >= lengths[k - 1], `${name} text shrank from ${lengths[k - 1]} to ${lengths[k]} chars`);
        }

        for (const s of samples) {
          assert.ok(final.startsWith(s[i]), `${name} showed text that is not a prefix of the answer: …${s[i].slice(-40)}`);
        }
      }

      const both = samples.filter(([ta, tb]) => ta.length > 0 && ta.length < final.length && tb.length > 0 && tb.length < final.length);
      assert.ok(both.length >= 5, `both tabs should stream at the same time; ${both.length} samples had both mid-answer`);
      assert.equal(endA, endB, 'both tabs end with the same text');
      assert.equal(endA, final);
      assert.equal(await storedAssistantText(opencode, sessionId), endA, "the page's text equals opencode's stored text");
      t.diagnostic(`${samples.length} samples, ${both.length} with both tabs mid-answer`);
    });
  });

  it("a session created in one tab appears in the other tab's sidebar without a reload", { timeout: 45_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const a = await tabs.open(gateway.url);
      const b = await tabs.open(gateway.url);
      await Promise.all([waitConnected(a), waitConnected(b)]);
      const navigations = [];
      b.on('framenavigated', (frame) => frame === b.mainFrame() && navigations.push(frame.url()));
      const sessionId = await newSession(a);
      await b.waitForSelector(`[data-testid="session-item"][data-session-id="${sessionId}"]`, { timeout: 10_000 });
      // First in the list (newest first), heard through SessionListChanged: tab B neither reloaded nor navigated.
      const first = await b.getAttribute('[data-testid="session-item"]', 'data-session-id');
      assert.equal(first, sessionId);
      assert.deepEqual(navigations, []);
    });
  });

  it('a tab reloaded mid-stream ends with the same text as the other tab and opencode', { timeout: 60_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      // Tab B receives every event whole (?events=full); tab A compact deltas.
      const a = await tabs.open(gateway.url);
      const sessionId = await newSession(a);
      const b = await tabs.open(gateway.url, { session: sessionId, events: 'full' });
      const tokens = 300;
      const last = `t${tokens} `;
      await sendPrompt(a, `reload tokens=${tokens} delay=15`);
      await b.waitForFunction((s) => [...document.querySelectorAll(s)].some((n) => n.textContent.includes('t40 ')), sel.assistantText, {
        timeout: 20_000,
      });
      await b.reload();
      await waitConnected(b);
      const afterReload = await assistantText(a);
      assert.ok(!afterReload.endsWith(last), 'the reload should happen while the answer still streams');
      t.diagnostic(`reloaded at ${afterReload.length} of ${mockAnswer(tokens).length} chars`);

      await Promise.all([waitAnswerDone(a, last), waitAnswerDone(b, last)]);
      const [endA, endB] = await Promise.all([assistantText(a), assistantText(b)]);
      assert.equal(endB, endA, 'the reloaded tab ends with the same text as the other tab');
      assert.equal(endA, mockAnswer(tokens));
      assert.equal(await storedAssistantText(opencode, sessionId), endB, "the reloaded tab's text equals opencode's stored text");
    });
  });

  it('the page recovers from a gateway restart mid-stream', { timeout: 75_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const a = await tabs.open(gateway.url);
      const sessionId = await newSession(a);
      await recordBadgeStates(a);
      const tokens = 400;
      const last = `t${tokens} `;
      await sendPrompt(a, `restart tokens=${tokens} delay=20`);
      await a.waitForFunction((s) => [...document.querySelectorAll(s)].some((n) => n.textContent.includes('t40 ')), sel.assistantText, {
        timeout: 20_000,
      });

      await recordShownText(a);
      await gateway.kill('SIGKILL');
      await a.waitForSelector(`${sel.badge}[data-state="reconnecting"]`, { timeout: 15_000 });
      const atKill = await assistantText(a);
      await gateway.start();
      await waitConnected(a, 30_000);
      const atReconnect = await assistantText(a);
      await waitAnswerDone(a, last, 30_000);

      const states = await badgeStates(a);
      t.diagnostic(`badge states: ${states.join(' → ')}; text at kill ${atKill.length}, at reconnect ${atReconnect.length} chars`);
      const reconnecting = states.indexOf('reconnecting');
      assert.ok(reconnecting > 0, `badge should show reconnecting: ${states.join(' → ')}`);
      assert.ok(states.indexOf('connected', reconnecting) > reconnecting, `badge should be connected again: ${states.join(' → ')}`);
      assert.ok(!atKill.endsWith(last), 'the gateway should be killed while the answer still streams');

      const end = await assistantText(a);
      assert.equal(end, mockAnswer(tokens));
      assert.equal(await storedAssistantText(opencode, sessionId), end, "the page's text equals opencode's stored text");
      // The new process never saw the part start: what it shows after the restart is marked, never a fragment alone.
      const texts = await storedPartTexts(opencode, sessionId);
      const { violations, withGaps, moments } = await shownTextViolations(a, (id) => texts.get(id));
      t.diagnostic(`${moments} moments recorded, ${withGaps} with a gap mark`);
      assert.deepEqual(violations, []);
      assert.ok(withGaps > 0, 'a gap mark should show while the new process streams a part it did not see start');
      assert.equal(await a.locator(sel.gapMark).count(), 0, 'no gap mark once opencode restated the text');
    });
  });

  it('a cut upstream stream shows a gap mark, never a fragment as the text', { timeout: 90_000 }, async (t) => {
    const proxy = await startUpstreamProxy(opencode);
    const cut = await startGateway(proxy.url, undefined, {
      log: 'gateway-cut.log',
      args: [`--Gateway:Store:DataDirectory=${join(repoRoot, '.dev', 'browser-gateway-cut-data')}`,
        '--Gateway:Streaming:ReconnectInitialDelay=00:00:00.500', '--Gateway:Streaming:ReconnectMaxDelay=00:00:01'],
    });
    try {
      await withTabs(browser, t.name, async (tabs) => {
        const a = await tabs.open(cut.url);
        const sessionId = await newSession(a);
        const tokens = 500;
        await sendPrompt(a, `cut tokens=${tokens} delay=15`);
        await a.waitForFunction((s) => [...document.querySelectorAll(s)].some((n) => n.textContent.includes('t100 ')), sel.assistantText, {
          timeout: 30_000,
        });
        await recordShownText(a);
        proxy.cutStreams();
        await a.waitForSelector(sel.gapMark, { timeout: 20_000 });
        await waitAnswerDone(a, `t${tokens} `, 60_000);

        const texts = await storedPartTexts(opencode, sessionId);
        const { violations, withGaps, moments } = await shownTextViolations(a, (id) => texts.get(id));
        t.diagnostic(`${moments} moments recorded, ${withGaps} with a gap mark`);
        assert.deepEqual(violations, []);
        assert.ok(withGaps > 0);
        assert.equal(await assistantText(a), await storedAssistantText(opencode, sessionId));
        assert.equal(await a.locator(sel.gapMark).count(), 0, 'no gap mark once opencode restated the text');
      });
    } finally {
      await cut.kill('SIGTERM');
      await proxy.close();
    }
  });

  it('a permission request answered "Allow once" in the page reaches opencode', { timeout: 60_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const a = await tabs.open(gateway.url);
      const sessionId = await newSession(a);
      await sendPrompt(a, 'Run the **echo** check with `bash`: tool=bash');
      const card = await a.waitForSelector(sel.permission, { timeout: 30_000 });
      const requestId = await card.getAttribute('data-request-id');
      const pending = await pendingPermissions(opencode);
      assert.ok(
        pending.some((p) => p.id === requestId && p.sessionID === sessionId),
        `opencode should hold the request the page shows (${requestId}): ${JSON.stringify(pending)}`,
      );
      await a.waitForSelector(sel.toolPart);
      mkdirSync(screenshotDir, { recursive: true });
      await a.screenshot({ path: join(screenshotDir, 'permission-desktop.png') });

      await a.click(sel.permissionOnce);
      await a.waitForSelector(`${sel.toolStatus}[data-status="completed"]`, { timeout: 30_000 });
      await a.waitForSelector(sel.permission, { state: 'detached', timeout: 15_000 });
      await waitAnswerDone(a, 't5 ', 30_000);
      const text = await assistantText(a);
      assert.ok(text.includes('Tool finished.'), `the answer after the tool should show: ${text}`);
      const output = await a.textContent(`${sel.toolPart} .tool-output`);
      assert.match(output ?? '', /mock-tool-output/, 'the tool card shows the command output');
      assert.deepEqual(await pendingPermissions(opencode), [], 'opencode has no pending permission left');
      assert.equal(await storedAssistantText(opencode, sessionId), text, "the page's text equals opencode's stored text");
    });
  });

  it('markdown in messages is rendered safely and reasoning is shown', { timeout: 45_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const a = await tabs.open(gateway.url);
      await newSession(a);
      await sendPrompt(a, 'Check **bold** and `inline <b>code</b>` reasoning=3 tokens=5\n\n```\n<script>window.pwned=1</script>\n```');
      const user = a.locator('[data-testid="message"][data-role="user"] [data-testid="text-part"]').first();
      await user.waitFor({ timeout: 15_000 });
      const html = await user.innerHTML();
      assert.ok(html.includes('<strong>bold</strong>'), `bold rendered: ${html}`);
      assert.ok(html.includes('<code>inline &lt;b&gt;code&lt;/b&gt;</code>'), `inline code escaped: ${html}`);
      assert.ok(html.includes('<pre><code>&lt;script&gt;window.pwned=1&lt;/script&gt;</code></pre>'), `code block escaped: ${html}`);
      await a.waitForSelector('[data-testid="reasoning-part"]', { timeout: 20_000 });
      await waitAnswerDone(a, 't5 ', 20_000);
      assert.match(await a.textContent('[data-testid="reasoning-part"]'), /r1 r2 r3/);
      assert.equal(await a.evaluate(() => window.pwned), undefined, 'no script from a message ran');
    });
  });

  it('screenshots of the chat page at desktop 1280×800 and phone 375×812', { timeout: 60_000 }, async (t) => {
    mkdirSync(screenshotDir, { recursive: true });
    await withTabs(browser, t.name, async (tabs) => {
      // Its own session (a markdown prompt, a tool call allowed through opencode's API, the answer after it), so
      // the screenshots do not depend on the permission test passing.
      const desktop = await tabs.open(gateway.url);
      const sessionId = await newSession(desktop);
      await sendPrompt(desktop, 'Show **bold**, `inline code` and a tool card: tool=bash');
      const [request] = await waitForPermission(opencode, sessionId);
      await replyPermission(opencode, request.id, 'once');
      await waitAnswerDone(desktop, 't5 ', 20_000);

      const shots = [
        [desktop, 'chat-desktop.png', { width: 1280, height: 800 }],
        [await tabs.open(gateway.url, { session: sessionId, viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true }), 'chat-phone.png', { width: 375, height: 812 }],
      ];
      for (const [page, file, viewport] of shots) {
        await waitAnswerDone(page, 't5 ', 20_000);
        await page.waitForSelector(`${sel.toolStatus}[data-status="completed"]`);
        await page.evaluate(() => document.activeElement?.blur()); // no focus ring on the composer
        // Nothing wider than the viewport: neither the page nor the message list scrolls sideways, and every
        // message, card and the composer lie within the screen.
        const overflow = await horizontalOverflow(page, ['message', 'tool-part', 'composer']);
        assert.deepEqual(overflow, [], `${file}: wider than the ${viewport.width}px viewport`);
        for (const s of [sel.input, sel.send, sel.badge, sel.toolPart, sel.assistantText]) {
          assert.ok(await page.isVisible(s), `${file}: ${s} should be visible`);
        }

        await page.screenshot({ path: join(screenshotDir, file) });
        assert.ok(statSync(join(screenshotDir, file)).size > 5_000, `${file} was written`);
      }

      const phone = shots[1][0];
      await phone.click('[data-testid="toggle-sessions"]');
      await phone.waitForFunction(() => document.querySelector('[data-testid="sidebar"]').getBoundingClientRect().left >= 0);
      assert.ok(await phone.isVisible(`[data-testid="session-item"][data-session-id="${sessionId}"]`), 'the session is listed');
      await phone.screenshot({ path: join(screenshotDir, 'chat-phone-sessions.png') });
    });
  });
});

