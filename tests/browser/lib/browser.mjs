// Headless Debian Chromium driven by playwright-core, and helpers that read the demo page through its data-testid
// attributes.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chatUrl } from './auth.mjs';
import { artifactsDir } from './stack.mjs';

export const screenshotDir = join(artifactsDir, 'screenshots');

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, headless: true });
}

export const sel = {
  badge: '[data-testid="connection-badge"]',
  newSession: '[data-testid="new-session"]',
  input: '[data-testid="prompt-input"]',
  composer: '[data-testid="composer"]',
  send: '[data-testid="send-button"]',
  status: '[data-testid="session-status"]',
  permission: '[data-testid="permission"]',
  permissionOnce: '[data-testid="permission-once"]',
  question: '[data-testid="question"]',
  subagent: '[data-testid="subagent"]',
  message: '[data-testid="message"]',
  toolPart: '[data-testid="tool-part"]',
  toolStatus: '[data-testid="tool-status"]',
  assistantText: '[data-testid="message"][data-role="assistant"] [data-testid="text-part"]',
  gapMark: '[data-testid="gap-mark"]',
};

/**
 * A set of pages (tabs) for one test: each one records uncaught page errors, and on failure all are screenshotted
 * into artifacts/screenshots/failures/.
 */
export class Tabs {
  constructor(browser, name) {
    this.browser = browser;
    this.name = name;
    this.pages = [];
    this.errors = [];
    this.contexts = [];
  }

  /**
   * A new tab, in a browser context of its own: a separate window, so every tab is in front and renders as it
   * would for a person looking at it. (Pages of one context are tabs of one window, and Chromium throttles the ones
   * behind: they update in ~1 s bursts even in headless mode.)
   */
  async open(gatewayUrl, { session, protocol, events, viewport = { width: 1280, height: 800 }, deviceScaleFactor = 1, isMobile = false } = {}) {
    const context = await this.browser.newContext({ viewport, deviceScaleFactor, isMobile, hasTouch: isMobile });
    this.contexts.push(context);
    const page = await context.newPage();
    const index = this.pages.length;
    page.on('pageerror', (e) => this.errors.push(`tab ${index}: ${e.stack ?? e}`));
    this.pages.push(page);
    await page.goto(chatUrl(gatewayUrl, { session, protocol, events }));
    await waitConnected(page);
    return page;
  }

  async screenshotAll(suffix) {
    const dir = join(screenshotDir, 'failures');
    mkdirSync(dir, { recursive: true });
    const slug = this.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
    await Promise.all(
      this.pages.map((page, i) =>
        page.screenshot({ path: join(dir, `${slug}-tab${i}${suffix}.png`), fullPage: false }).catch(() => undefined),
      ),
    );
  }

  assertNoPageErrors() {
    if (this.errors.length) throw new Error(`uncaught errors in the page:\n${this.errors.join('\n')}`);
  }

  async close() {
    await Promise.all(this.contexts.map((c) => c.close().catch(() => undefined)));
  }
}

/** Runs `body(tabs)`; on failure screenshots every tab before rethrowing; always closes them. */
export async function withTabs(browser, name, body) {
  const tabs = new Tabs(browser, name);
  try {
    await body(tabs);
    tabs.assertNoPageErrors();
  } catch (e) {
    await tabs.screenshotAll('');
    throw e;
  } finally {
    await tabs.close();
  }
}

export async function waitConnected(page, timeout = 20_000) {
  await page.waitForSelector(`${sel.badge}[data-state="connected"]`, { timeout });
}

/** Clicks "+ New session" and returns the id the page opened (it puts it in ?session=). */
export async function newSession(page) {
  await page.click(sel.newSession);
  await page.waitForURL(/[?&]session=ses_/, { timeout: 15_000 });
  return new URL(page.url()).searchParams.get('session');
}

/** Types a prompt into the composer and sends it; waits until the page accepted it (the input was cleared). */
export async function sendPrompt(page, text) {
  await page.fill(sel.input, text);
  await page.click(sel.send);
  await page.waitForFunction((s) => document.querySelector(s).value === '', sel.input, { timeout: 15_000 });
}

/** The text the page shows for the session's assistant messages (all assistant text parts, in order). */
export function assistantText(page) {
  return page.evaluate((s) => [...document.querySelectorAll(s)].map((n) => n.textContent).join(''), sel.assistantText);
}

/**
 * Waits until the page shows `last` at the end of the assistant text and the session is idle: the answer is done.
 * `last` is e.g. "t300 " (the mock's answers are one line of plain text, so the rendered text equals the raw text).
 */
export async function waitAnswerDone(page, last, timeout = 30_000) {
  await page.waitForFunction(
    ({ s, status, last }) =>
      [...document.querySelectorAll(s)].map((n) => n.textContent).join('').endsWith(last) &&
      document.querySelector(status)?.dataset.status === 'idle',
    { s: sel.assistantText, status: sel.status, last },
    { timeout, polling: 100 },
  );
}

/**
 * Records, at every change of the page, each assistant text part as the user sees it: its text cut at the gap marks
 * (`segments`), read with `shownTextViolations(page, finalText)`.
 */
export async function recordShownText(page) {
  await page.evaluate((s) => {
    window.__shown = [];
    const last = new Map();
    const record = () => {
      for (const node of document.querySelectorAll(s)) {
        const segments = [''];
        for (const child of node.childNodes) {
          if (child.nodeType === 1 && child.classList.contains('gap')) segments.push('');
          else segments[segments.length - 1] += child.textContent;
        }

        const key = JSON.stringify(segments);
        if (last.get(node.dataset.partId) !== key) {
          last.set(node.dataset.partId, key);
          window.__shown.push({ partId: node.dataset.partId, segments });
        }
      }
    };
    record();
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, sel.assistantText);
}

/**
 * Every recorded moment whose text is not `finalText` cut short, or, with gap marks, pieces of it in order (the
 * first one at its start). Also returns how many moments showed a gap mark.
 */
export async function shownTextViolations(page, finalText) {
  const shown = await page.evaluate(() => window.__shown ?? []);
  const violations = [];
  let withGaps = 0;
  for (const { partId, segments } of shown) {
    const final = finalText(partId);
    if (final === undefined) continue;
    if (segments.length > 1) withGaps++;
    let position = 0;
    for (let i = 0; i < segments.length; i++) {
      const piece = segments[i];
      if (i === 0) {
        if (!final.startsWith(piece)) violations.push(`${partId}: "${piece.slice(0, 60)}…" is not how it starts`);
        position = piece.length;
        continue;
      }

      const found = final.indexOf(piece, position);
      if (found < 0) violations.push(`${partId}: piece "${piece.slice(0, 60)}…" after a gap is not in the final text`);
      else position = found + piece.length;
    }
  }

  return { violations, withGaps, moments: shown.length };
}

/**
 * What lies wider than the viewport: the page or the message list scrolling sideways, or an element of one of
 * `testids` reaching past the screen's edges. Empty when everything fits.
 */
export function horizontalOverflow(page, testids) {
  return page.evaluate((testids) => {
    const problems = [];
    const width = window.innerWidth;
    if (document.documentElement.scrollWidth > width) problems.push(`page scrollWidth ${document.documentElement.scrollWidth}`);
    const list = document.querySelector('[data-testid="messages"]');
    if (list.scrollWidth > list.clientWidth) problems.push(`message list scrollWidth ${list.scrollWidth} > ${list.clientWidth}`);
    for (const node of document.querySelectorAll(testids.map((id) => `[data-testid="${id}"]`).join(', '))) {
      const r = node.getBoundingClientRect();
      if (r.width > 0 && (r.left < 0 || r.right > width + 0.5)) problems.push(`${node.dataset.testid} spans ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
    return problems;
  }, testids);
}

/** Records every data-state the connection badge takes, from now on; read with `badgeStates(page)`. */
export async function recordBadgeStates(page) {
  await page.evaluate((s) => {
    const badge = document.querySelector(s);
    window.__badgeStates = [badge.dataset.state];
    new MutationObserver(() => window.__badgeStates.push(badge.dataset.state)).observe(badge, {
      attributes: true,
      attributeFilter: ['data-state'],
    });
  }, sel.badge);
}

export function badgeStates(page) {
  return page.evaluate(() => window.__badgeStates ?? []);
}

/** The mock LLM's answer to `tokens=N`: "t1 t2 … tN ". */
export function mockAnswer(tokens) {
  return Array.from({ length: tokens }, (_, i) => `t${i + 1} `).join('');
}
