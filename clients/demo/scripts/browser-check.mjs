// Drives the demo in headless Chromium against a running gateway (+ opencode with the harness's mock LLM):
//   GATEWAY_URL=http://127.0.0.1:5280 CHROMIUM=/usr/bin/chromium OUT=/tmp node scripts/browser-check.mjs
// Exits non-zero when a step fails; writes screenshots to $OUT.
import { chromium } from 'playwright-core';

const base = process.env.GATEWAY_URL ?? 'http://127.0.0.1:5280';
const out = process.env.OUT ?? '/tmp';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

const step = (name) => console.log(`- ${name}`);
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(base + '/');
  await page.waitForSelector('[data-testid="connection-badge"][data-state="connected"]', { timeout: 15000 });
  step('badge shows connected');

  await page.click('[data-testid="new-session"]');
  await page.waitForURL(/session=ses_/, { timeout: 10000 });
  const sessionId = new URL(page.url()).searchParams.get('session');
  await page.waitForSelector(`[data-testid="session-item"][data-session-id="${sessionId}"]`);
  step(`new session ${sessionId} is listed and open`);

  const md = 'Check **bold** and `inline <b>code</b>` tokens=40 delay=10\n\n```\n<script>window.pwned=1</script>\n```';
  await page.fill('[data-testid="prompt-input"]', md);
  await page.click('[data-testid="send-button"]');
  const userText = page.locator('[data-testid="message"][data-role="user"] [data-testid="text-part"]').first();
  await userText.waitFor();
  const html = await userText.innerHTML();
  if (!html.includes('<strong>bold</strong>') || !html.includes('<code>inline &lt;b&gt;code&lt;/b&gt;</code>')
    || !html.includes('<pre><code>&lt;script&gt;')) throw new Error(`markdown not rendered safely: ${html}`);
  if (await page.evaluate(() => window.pwned)) throw new Error('script ran');
  step('user text rendered as safe markdown');

  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="message"][data-role="assistant"] [data-testid="text-part"]')]
    .some((n) => n.textContent.includes('t40')), null, { timeout: 30000 });
  await page.waitForSelector('[data-testid="session-status"][data-status="idle"]', { state: 'attached', timeout: 15000 });
  step('assistant answer streamed (t1…t40) and the session is idle');

  await page.fill('[data-testid="prompt-input"]', 'think first reasoning=5 tokens=5');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid="reasoning-part"]', { timeout: 30000 });
  await page.waitForSelector('[data-testid="session-status"][data-status="idle"]', { state: 'attached', timeout: 15000 });
  step('reasoning block shown');

  await page.fill('[data-testid="prompt-input"]', 'run it tool=bash');
  await page.click('[data-testid="send-button"]');
  await page.waitForSelector('[data-testid="permission-once"]', { timeout: 30000 });
  await page.waitForSelector('[data-testid="tool-part"]');
  await page.screenshot({ path: `${out}/demo-permission-desktop.png` });
  step('permission prompt shown');
  await page.click('[data-testid="permission-once"]');
  await page.waitForSelector('[data-testid="tool-status"][data-status="completed"]', { timeout: 30000 });
  await page.waitForSelector('[data-testid="permission"]', { state: 'detached', timeout: 10000 });
  await page.waitForFunction(() => document.body.textContent.includes('Tool finished.'), null, { timeout: 30000 });
  await page.waitForSelector('[data-testid="session-status"][data-status="idle"]', { state: 'attached', timeout: 15000 });
  step('allowed once: tool completed and the answer went on');
  await page.screenshot({ path: `${out}/demo-desktop.png` });

  const mobile = await browser.newPage({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2 });
  mobile.on('pageerror', (e) => errors.push(String(e)));
  await mobile.goto(`${base}/?session=${sessionId}`);
  await mobile.waitForSelector('[data-testid="connection-badge"][data-state="connected"]');
  await mobile.waitForFunction(() => document.querySelectorAll('[data-testid="message"]').length >= 6, null, { timeout: 15000 });
  const overflow = await mobile.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) throw new Error(`page is ${overflow}px wider than 375px`);
  await mobile.screenshot({ path: `${out}/demo-mobile.png` });
  await mobile.click('[data-testid="toggle-sessions"]');
  await mobile.waitForTimeout(300);
  await mobile.screenshot({ path: `${out}/demo-mobile-sessions.png` });
  step('?session= opens the session at 375px without horizontal overflow');

  if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
  console.log('browser check passed');
} catch (e) {
  console.error('browser check FAILED:', e.message);
  if (errors.length) console.error(errors.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
