// Real agent runs in the demo page, in headless Chromium against the gateway in front of the real opencode with the
// mock LLM: a subagent's permission answered in the root session's view, questions answered and dismissed, an image
// pasted and sent, a tool's output streaming into its card, earlier messages paged in when scrolled to the top.
// Run with ./run.sh (after e2e.test.mjs, which builds the gateway).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assistantText,
  horizontalOverflow,
  launchBrowser,
  newSession,
  screenshotDir,
  sel,
  sendPrompt,
  waitAnswerDone,
  withTabs,
} from './lib/browser.mjs';
import {
  buildAll,
  pendingPermissions,
  pendingQuestions,
  promptOpencode,
  startGateway,
  startOpencode,
  stopAll,
  storedAssistantText,
  storedMessages,
} from './lib/stack.mjs';

/** A 16×16 PNG: a white cross on blue (140 bytes). */
const crossPng = 'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAU0lEQVR42mP4Dwb6+fcIIohKhv8wQIxqkAZkDkHVQDYDphAe1QgNuPRgCjLgkcZqBAMuB+ByJAMeR2P1EsUaSHMSaZ4mLVhJizjSkgbJiY/U5A0AROgAd6hM1HMAAAAASUVORK5CYII=';
const colorQuestion = '{"questions":[{"question":"Which color?","header":"Color","options":[{"label":"Red","description":"r"},{"label":"Blue","description":"b"}]}]}';
const colorsQuestion = '{"questions":[{"question":"Which colors?","header":"Colors","multiple":true,"options":[{"label":"Red","description":"r"},{"label":"Blue","description":"b"},{"label":"Green","description":"g"}]}]}';
const phone = { viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true };

/** The stored state of a session's `question` tool calls, oldest first. */
async function questionTools(opencodeUrl, sessionId) {
  return (await storedMessages(opencodeUrl, sessionId)).flatMap((m) => m.parts).filter((p) => p.type === 'tool' && p.tool === 'question');
}

/** Pastes a file into the element `selector` names, as a clipboard holding only that file (a screenshot) would. */
function pasteFile(page, selector, { name, type, base64 }) {
  return page.evaluate(({ selector, name, type, base64 }) => {
    const data = new DataTransfer();
    data.items.add(new File([Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))], name, { type }));
    document.querySelector(selector).dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, { selector, name, type, base64 });
}

/** Drags a file of `size` zero bytes over the element `selector` names and drops it there. */
function dropFile(page, selector, { name, type, size }) {
  return page.evaluate(({ selector, name, type, size }) => {
    const data = new DataTransfer();
    data.items.add(new File([new Uint8Array(size)], name, { type }));
    const target = document.querySelector(selector);
    for (const kind of ['dragover', 'drop']) target.dispatchEvent(new DragEvent(kind, { dataTransfer: data, bubbles: true, cancelable: true }));
  }, { selector, name, type, size });
}

/** Records every text the first tool card's output shows, from now on; read with `page.evaluate(() => window.__toolOutputs)`. */
function recordToolOutput(page) {
  return page.evaluate(() => {
    window.__toolOutputs = [];
    new MutationObserver(() => {
      const text = document.querySelector('[data-testid="tool-part"] .tool-output')?.textContent ?? '';
      if (text !== window.__toolOutputs.at(-1)) window.__toolOutputs.push(text);
    }).observe(document.querySelector('[data-testid="messages"]'), { subtree: true, childList: true, characterData: true });
  });
}

/**
 * Counts the `Join` invocations the page sends from now on (JSON or MessagePack frames naming the method), read with
 * `page.evaluate(() => window.__joinsSent)`: a client that applied every event as the rules say never rejoins.
 */
function countJoins(page) {
  return page.evaluate(() => {
    window.__joinsSent = 0;
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      const text = typeof data === 'string' ? data : new TextDecoder('latin1').decode(data);
      if (/"target":"Join"|\xa4Join/.test(text)) window.__joinsSent++;
      return send.call(this, data);
    };
  });
}

describe('real agent runs in the demo page', { concurrency: false }, () => {
  let opencode;
  let gateway;
  let browser;

  before(async () => {
    buildAll();
    opencode = startOpencode();
    gateway = await startGateway(opencode, undefined, { log: 'gateway-agent-runs.log' });
    browser = await launchBrowser();
    mkdirSync(screenshotDir, { recursive: true });
  }, { timeout: 150_000 });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await stopAll();
  });

  it("a subagent's permission is answered in the root session's view, and the run completes", { timeout: 120_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const page = await tabs.open(gateway.url);
      const rootId = await newSession(page);
      await countJoins(page);
      await sendPrompt(page, 'go tool=task args={"description":"sub task","prompt":"do it tool=bash","subagent_type":"general"}');

      // The child's bash call waits: its request shows in the root's view, saying which subagent asked.
      const card = await page.waitForSelector(sel.permission, { timeout: 60_000 });
      const requestId = await card.getAttribute('data-request-id');
      const asked = (await pendingPermissions(opencode)).find((p) => p.id === requestId);
      assert.ok(asked, `opencode holds the request the page shows (${requestId})`);
      const childId = asked.sessionID;
      assert.notEqual(childId, rootId, 'the request is the subagent session\'s');
      const origin = `${sel.permission}[data-request-id="${requestId}"] [data-testid="request-origin"][data-session-id="${childId}"]`;
      await page.waitForFunction((s) => /sub task/.test(document.querySelector(s)?.textContent ?? ''), origin, { timeout: 15_000 });
      const child = `${sel.subagent}[data-session-id="${childId}"]`;
      await page.waitForSelector(child, { timeout: 15_000 });
      assert.match(await page.textContent(`${child} [data-testid="subagent-title"]`), /sub task/);
      await page.screenshot({ path: join(screenshotDir, 'subagent-permission-desktop.png') });
      const small = await tabs.open(gateway.url, { session: rootId, ...phone });
      await small.waitForSelector(`${sel.permission}[data-request-id="${requestId}"]`, { timeout: 15_000 });
      await small.waitForSelector(child, { timeout: 15_000 });
      assert.deepEqual(await horizontalOverflow(small, ['message', 'tool-part', 'composer', 'permission', 'subagents']), [],
        'nothing wider than the phone\'s 375px');
      await small.screenshot({ path: join(screenshotDir, 'subagent-permission-phone.png') });

      await page.click(`${sel.permission}[data-request-id="${requestId}"] ${sel.permissionOnce}`);
      await page.waitForSelector(sel.permission, { state: 'detached', timeout: 15_000 });
      await page.waitForSelector(`${sel.toolPart}[data-status="completed"]`, { timeout: 60_000 });
      await waitAnswerDone(page, 't5 ', 60_000);
      const text = await assistantText(page);
      assert.ok(text.includes('Tool finished.'), `the root's answer after the subagent: ${text}`);
      assert.equal(await storedAssistantText(opencode, rootId), text, "the page's text equals opencode's stored text");
      assert.deepEqual(await pendingPermissions(opencode), [], 'opencode has no pending permission left');
      await page.waitForSelector(`${child} [data-testid="subagent-status"][data-status="idle"]`, { timeout: 15_000 });
      assert.equal(await page.evaluate(() => window.__joinsSent), 0, 'every event of the run applied without a rejoin');

      // The panel opens the subagent's own session: its bash call, allowed from the root, with its output.
      await page.click(`${child} button`);
      await page.waitForURL(new RegExp(`[?&]session=${childId}`), { timeout: 10_000 });
      await page.waitForFunction(() => window.__joinsSent === 1, null, { timeout: 5_000 }); // the counter counts
      await page.waitForSelector(`${sel.toolPart}[data-status="completed"]`, { timeout: 15_000 });
      assert.match(await page.textContent(`${sel.toolPart} .tool-output`), /mock-tool-output/);
      assert.ok(await page.isVisible('[data-testid="open-parent"]'), 'the subagent session links back to its parent');
    });
  });

  it('a question is answered by clicking an option, one of several choices with checkboxes, and another dismissed', { timeout: 120_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const page = await tabs.open(gateway.url);
      const sessionId = await newSession(page);
      await sendPrompt(page, `ask tool=question args=${colorQuestion}`);
      const card = await page.waitForSelector(sel.question, { timeout: 30_000 });
      const requestId = await card.getAttribute('data-request-id');
      assert.ok((await pendingQuestions(opencode)).some((q) => q.id === requestId && q.sessionID === sessionId),
        `opencode holds the question the page shows (${requestId})`);
      const options = await page.$$eval(`${sel.question} [data-testid="question-option"]`, (nodes) => nodes.map((n) => n.dataset.label));
      assert.deepEqual(options, ['Red', 'Blue']);
      await page.screenshot({ path: join(screenshotDir, 'question-desktop.png') });

      await page.click(`${sel.question} [data-testid="question-option"][data-label="Red"]`);
      await page.waitForSelector(sel.question, { state: 'detached', timeout: 15_000 });
      await page.waitForSelector(`${sel.toolPart}[data-status="completed"]`, { timeout: 30_000 });
      await waitAnswerDone(page, 't5 ', 30_000);
      assert.deepEqual(await pendingQuestions(opencode), []);
      const [answered] = await questionTools(opencode, sessionId);
      assert.match(answered?.state?.output ?? '', /Red/, `opencode's question tool got the answer: ${JSON.stringify(answered?.state)}`);
      assert.match(await page.textContent(`${sel.toolPart} .tool-output`), /Red/, 'the tool card shows the answer');

      // Several may be chosen: checkboxes, sent together.
      await sendPrompt(page, `pick tool=question args=${colorsQuestion}`);
      await page.waitForSelector(`${sel.question} [data-testid="question-choice"] input[type="checkbox"]`, { timeout: 30_000 });
      for (const label of ['Red', 'Green']) await page.check(`${sel.question} [data-testid="question-choice"][data-label="${label}"] input`);
      await page.click(`${sel.question} [data-testid="question-submit"]`);
      await page.waitForSelector(sel.question, { state: 'detached', timeout: 15_000 });
      await page.waitForFunction((s) => document.querySelectorAll(s).length === 2, `${sel.toolPart}[data-status="completed"]`, { timeout: 30_000 });
      await page.waitForSelector(`${sel.status}[data-status="idle"]`, { state: 'attached', timeout: 30_000 });
      const picked = (await questionTools(opencode, sessionId))[1]?.state?.output ?? '';
      assert.ok(/Red/.test(picked) && /Green/.test(picked) && !/Blue/.test(picked), `opencode's question tool got both choices: ${picked}`);

      // Dismissed: the question tool ends with an error, and the session goes idle.
      await sendPrompt(page, `ask again tool=question args=${colorQuestion}`);
      await page.waitForSelector(sel.question, { timeout: 30_000 });
      await page.click(`${sel.question} [data-testid="question-dismiss"]`);
      await page.waitForSelector(sel.question, { state: 'detached', timeout: 15_000 });
      await page.waitForSelector(`${sel.toolPart}[data-status="error"]`, { timeout: 30_000 });
      await page.waitForSelector(`${sel.status}[data-status="idle"]`, { state: 'attached', timeout: 30_000 });
      assert.deepEqual(await pendingQuestions(opencode), []);
    });
  });

  it('an image pasted into the composer is sent and shown in the transcript; a file over the limit is refused', { timeout: 60_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const page = await tabs.open(gateway.url);
      const sessionId = await newSession(page);
      await pasteFile(page, sel.input, { name: 'cross.png', type: 'image/png', base64: crossPng });
      await page.waitForSelector('[data-testid="attachment-chip"][data-mime="image/png"] img', { timeout: 5_000 });

      await dropFile(page, sel.composer, { name: 'big.bin', type: 'application/octet-stream', size: 5 * 1024 * 1024 + 1 });
      const error = await page.waitForSelector('[data-testid="attachment-error"]:not([hidden])', { timeout: 5_000 });
      assert.match(await error.textContent(), /big\.bin is 5\.0 MiB; attachments may be at most 5\.0 MiB/);
      assert.equal(await page.locator('[data-testid="attachment-chip"]').count(), 1, 'the refused file has no chip');
      await page.screenshot({ path: join(screenshotDir, 'attachment-composer-desktop.png') });

      await sendPrompt(page, 'What is in this picture? tokens=3');
      await page.waitForSelector('[data-testid="attachments"]', { state: 'hidden', timeout: 5_000 });
      const image = await page.waitForSelector(`${sel.message}[data-role="user"] [data-testid="file-image"]`, { timeout: 15_000 });
      await page.waitForFunction((img) => img.complete && img.naturalWidth === 16, image);
      await waitAnswerDone(page, 't3 ', 30_000);
      const user = (await storedMessages(opencode, sessionId)).find((m) => m.info.role === 'user');
      const file = user?.parts.find((p) => p.type === 'file');
      assert.equal(file?.mime, 'image/png', `opencode stored the attachment: ${JSON.stringify(user?.parts.map((p) => p.type))}`);
      assert.equal(file.filename, 'cross.png');
      assert.equal(file.url, `data:image/png;base64,${crossPng}`);
      await page.screenshot({ path: join(screenshotDir, 'attachment-desktop.png') });
    });
  });

  it("a tool's output streams into its card, every moment a prefix of what opencode stores, in every event form", { timeout: 60_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      // Compact deltas in JSON (the default), compact in MessagePack, and every event whole.
      const page = await tabs.open(gateway.url);
      const sessionId = await newSession(page);
      await sendPrompt(page, 'count tool=bash args={"command":"for i in $(seq 1 30); do echo line $i; sleep 0.1; done","description":"Count"}');
      await page.waitForSelector(sel.permission, { timeout: 30_000 });
      const others = [await tabs.open(gateway.url, { session: sessionId, protocol: 'msgpack' }), await tabs.open(gateway.url, { session: sessionId, events: 'full' })];
      const pages = [page, ...others];
      await Promise.all(others.map((p) => p.waitForSelector(sel.permission, { timeout: 15_000 })));
      await Promise.all(pages.flatMap((p) => [recordToolOutput(p), countJoins(p)]));
      await page.click(sel.permissionOnce);
      await Promise.all(pages.map((p) => p.waitForSelector(`${sel.toolPart}[data-status="completed"]`, { timeout: 30_000 })));
      await Promise.all(pages.map((p) => waitAnswerDone(p, 't5 ', 30_000)));

      const tool = (await storedMessages(opencode, sessionId)).flatMap((m) => m.parts).find((p) => p.type === 'tool' && p.tool === 'bash');
      const final = tool.state.output;
      assert.match(final, /line 30/);
      for (const [name, tab] of [['compact JSON', page], ['compact MessagePack', others[0]], ['full', others[1]]]) {
        const shown = await tab.evaluate(() => window.__toolOutputs);
        assert.equal(shown.at(-1), final, `${name}: the card ends with opencode's stored output`);
        for (const text of shown) assert.ok(final.startsWith(text), `${name}: the card showed text that is not a prefix of the output: …${text.slice(-40)}`);
        const partial = new Set(shown.map((s) => s.length).filter((n) => n > 0 && n < final.length));
        t.diagnostic(`${name}: ${shown.length} outputs shown, ${partial.size} partial`);
        assert.ok(partial.size >= 3, `${name}: the output should show while the command runs; partial lengths: ${[...partial]}`);
        assert.equal(await tab.evaluate(() => window.__joinsSent), 0, `${name}: every event applied without a rejoin`);
      }
    });
  });

  it('earlier messages are paged in when the list is scrolled to the top, keeping the view in place', { timeout: 90_000 }, async (t) => {
    await withTabs(browser, t.name, async (tabs) => {
      const writer = await tabs.open(gateway.url);
      const sessionId = await newSession(writer);
      const turns = 11; // 22 messages: more than a snapshot's 20
      for (let i = 1; i <= turns; i++) await promptOpencode(opencode, sessionId, `turn ${i} tokens=1`);

      const page = await tabs.open(gateway.url, { session: sessionId });
      await page.waitForFunction((s) => document.querySelectorAll(s).length === 20, sel.message, { timeout: 20_000 });
      assert.ok(await page.isVisible('[data-testid="load-earlier"]'), 'the list says earlier messages exist');
      const firstShown = await page.getAttribute(sel.message, 'data-message-id');
      await page.$eval('[data-testid="messages"]', (list) => (list.scrollTop = 0));
      await page.waitForFunction(({ s, count }) => document.querySelectorAll(s).length === count, { s: sel.message, count: 2 * turns }, { timeout: 15_000 });
      await page.waitForSelector('[data-testid="load-earlier"]', { state: 'hidden' });

      const first = page.locator(sel.message).first();
      assert.equal(await first.getAttribute('data-role'), 'user');
      assert.match(await first.textContent(), /turn 1 tokens=1/);
      const list = await page.$eval('[data-testid="messages"]', (node) => node.scrollTop);
      assert.ok(list > 0, 'the messages shown before stay in view: the list scrolled down by what was added above');
      assert.ok(await page.isVisible(`${sel.message}[data-message-id="${firstShown}"]`), 'the message that was first is still visible');
    });
  });
});
