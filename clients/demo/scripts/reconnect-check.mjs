// Kills and restarts the gateway while the demo streams an answer; the page must show reconnecting/offline and then
// recover the full answer by itself. Needs RESTART_CMD (a shell command that restarts the gateway) and KILL_CMD.
import { execSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const base = process.env.GATEWAY_URL ?? 'http://127.0.0.1:5280';
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
  const states = [];
  await page.exposeFunction('recordState', (s) => states.push(s));
  await page.goto(base + '/');
  await page.waitForSelector('[data-testid="connection-badge"][data-state="connected"]');
  await page.evaluate(() => new MutationObserver(() => window.recordState(document.querySelector('[data-testid="connection-badge"]').dataset.state))
    .observe(document.querySelector('[data-testid="connection-badge"]'), { attributes: true }));
  await page.click('[data-testid="new-session"]');
  await page.waitForURL(/session=ses_/);
  await page.fill('[data-testid="prompt-input"]', 'long one tokens=400 delay=20');
  await page.click('[data-testid="send-button"]');
  await page.waitForFunction(() => document.body.textContent.includes('t30 '), null, { timeout: 30000 });
  execSync(process.env.KILL_CMD, { stdio: 'inherit' });
  await page.waitForSelector('[data-testid="connection-badge"][data-state="offline"]', { timeout: 20000 });
  execSync(process.env.RESTART_CMD, { stdio: 'inherit' });
  await page.waitForSelector('[data-testid="connection-badge"][data-state="connected"]', { timeout: 60000 });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-role="assistant"] [data-testid="text-part"]')]
    .some((n) => n.textContent.trim().endsWith('t400')), null, { timeout: 60000 });
  const text = await page.locator('[data-role="assistant"] [data-testid="text-part"]').last().textContent();
  const expected = Array.from({ length: 400 }, (_, i) => `t${i + 1}`).join(' ');
  if (text.trim() !== expected) throw new Error(`text differs: ${text.slice(0, 200)}`);
  console.log('badge states:', states.join(' → '));
  console.log('reconnect check passed');
} catch (e) {
  console.error('reconnect check FAILED:', e.message);
  process.exitCode = 1;
} finally {
  await browser.close();
}
