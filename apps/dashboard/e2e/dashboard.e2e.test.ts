// End to end in headless Chromium over the committed fixture run (fixtures/runs, copied to a temp
// dir): each heatmap renders with the right number of rows/columns and labels, the live view
// appends a metrics line written during the test, the router comparison and the live "route a
// sentence" panel work, and absent eval files say "not computed yet". Screenshots go to
// test-artifacts/. Skips (with a message) where /usr/bin/chromium is absent.
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardServer, ensureWebBuilt, packageRoot, startDashboard } from '../src/server.js';
import { chromiumPath, launchChromium } from './browser.js';

const artifacts = join(packageRoot, 'test-artifacts');
const fixture = join(packageRoot, 'fixtures', 'runs');
if (!chromiumPath) console.warn('e2e: skipped, /usr/bin/chromium is absent (apt-get install -y chromium)');

describe.skipIf(!chromiumPath)('dashboard in headless Chromium', () => {
  let server: DashboardServer;
  let browser: BrowserContext;
  let page: Page;
  let runs: string;
  const errors: string[] = [];

  beforeAll(async () => {
    ensureWebBuilt();
    mkdirSync(artifacts, { recursive: true });
    runs = mkdtempSync(join(tmpdir(), 'grin-dashboard-e2e-'));
    cpSync(fixture, runs, { recursive: true });
    // A run with metrics only, for the "not computed yet" notes.
    mkdirSync(join(runs, 'bare'));
    writeFileSync(
      join(runs, 'bare', 'metrics.jsonl'),
      readFileSync(join(runs, 'tiny', 'metrics.jsonl'), 'utf8')
        .split('\n')
        .slice(0, 3)
        .join('\n') + '\n',
    );
    server = await startDashboard({ runsDir: runs });
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    await page.goto(`${server.url}#run=tiny`);
    await page.waitForSelector('body[data-ready="true"]');
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('lists the runs', async () => {
    const names = await page
      .locator('#runs li a')
      .evaluateAll((links) => links.map((a) => a.firstChild?.textContent));
    expect(names).toEqual(['bare', 'tiny', 'tiny-compare']);
  });

  it('draws the expert-load heatmap as layers x experts with the balanced reference', async () => {
    const figure = page.locator('#expert-load figure.heatmap');
    expect(await figure.getAttribute('data-rows')).toBe('2');
    expect(await figure.getAttribute('data-cols')).toBe('4');
    expect(await figure.locator('.row-label').allTextContents()).toEqual(['layer 0', 'layer 1']);
    expect(await figure.locator('.col-label').allTextContents()).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(await figure.locator('.reference').textContent()).toContain('balanced 1/E = 0.250');
    const canvas = await figure.locator('canvas').first().boundingBox();
    await page.mouse.move(canvas!.x + canvas!.width * 0.9, canvas!.y + canvas!.height * 0.75);
    expect(await page.locator('#tooltip').textContent()).toMatch(
      /^layer 1, expert 3: 0\.\d{3} \(\d\.\d\d× balanced\)$/,
    );
    await page.locator('#expert-load').screenshot({ path: join(artifacts, 'expert-load.png') });
  });

  it('draws one category-similarity heatmap per layer, categories x categories', async () => {
    const expected = JSON.parse(readFileSync(join(runs, 'tiny', 'eval', 'category-similarity.json'), 'utf8'));
    const C = String(expected.categories.length);
    const figures = page.locator('#category-similarity figure.heatmap');
    expect(await figures.count()).toBe(expected.layers);
    for (let l = 0; l < expected.layers; l++) {
      expect(await figures.nth(l).getAttribute('data-rows')).toBe(C);
      expect(await figures.nth(l).getAttribute('data-cols')).toBe(C);
      expect(await figures.nth(l).locator('.row-label').allTextContents()).toEqual(expected.categories);
    }
  });

  it('shows the token routing table, layers x tokens, beside the text', async () => {
    const expected = JSON.parse(readFileSync(join(runs, 'tiny', 'routing', 'token-routing.json'), 'utf8'));
    const view = page.locator('#token-routing .tokens');
    expect(await view.getAttribute('data-tokens')).toBe(String(expected.tokens.length));
    expect(await view.locator('table.routing tbody tr').count()).toBe(expected.layers);
    expect(await view.locator('table.routing thead th.token-label').count()).toBe(expected.tokens.length);
    expect(await view.locator('.token-text span').count()).toBe(expected.tokens.length);
    const first = expected.tokens[0].experts[0].join('·');
    expect(await view.locator('table.routing tbody tr').first().locator('td').first().textContent()).toBe(
      first,
    );
  });

  it('draws the router comparison curves, one line per router', async () => {
    const charts = page.locator('#compare .chart');
    expect(await charts.count()).toBe(2);
    const legend = await charts.first().locator('.u-legend .u-series th').allTextContents();
    expect(legend.map((t) => t.trim())).toEqual(['step', 'sparsemixer-v2', 'gshard-top2']);
    await page.screenshot({ path: join(artifacts, 'run-tiny.png'), fullPage: true });
  });

  it('appends a metrics line written while the page is open, without a reload', async () => {
    const loss = page.locator('#curves .chart[data-title="loss"]');
    await expect.poll(() => loss.getAttribute('data-points')).toBe('16');
    appendFileSync(
      join(runs, 'tiny', 'metrics.jsonl'),
      `${JSON.stringify({ step: 17, tokens: 2176, loss: 3.21, lr: 0.001, grad_norm: 0.5, tokens_per_s: 900, aux_loss: 0.01 })}\n`,
    );
    await expect.poll(() => loss.getAttribute('data-points'), { timeout: 10_000 }).toBe('17');
    expect(await page.locator('.live-state').textContent()).toContain('17 steps, last loss 3.2100');
    // the fixture ran all its steps and no grin train holds it: finished, not live
    expect(await page.locator('.live-state').getAttribute('data-state')).toBe('finished');
    expect(await page.locator('.live-state').textContent()).toMatch(/^■ finished: /);
    await page.locator('#curves').screenshot({ path: join(artifacts, 'curves-live.png') });
  });

  it('routes a typed sentence with the checkpoint, in the page', async () => {
    const panel = page.locator('#live-route');
    await panel.locator('input[type=text]').fill('the cat follows a bird.');
    await panel.locator('button').click();
    await expect.poll(() => panel.getAttribute('data-routed'), { timeout: 60_000 }).not.toBeNull();
    const tokens = Number(await panel.getAttribute('data-routed'));
    expect(tokens).toBeGreaterThan(3);
    expect(await panel.locator('table.routing tbody tr').count()).toBe(2);
    expect(await panel.locator('table.routing thead th.token-label').count()).toBe(tokens);
    expect(['webgl', 'cpu']).toContain(await panel.getAttribute('data-device'));
    console.log(
      `e2e: live routing ran on '${await panel.getAttribute('data-device')}': ${await panel.locator('.route-status').textContent()}`,
    );
    await panel.screenshot({ path: join(artifacts, 'live-route.png') });
    expect(errors).toEqual([]);
  });

  it('says "not computed yet" for the views whose files are absent', async () => {
    await page.goto(`${server.url}#run=bare`);
    await page.waitForSelector('body[data-ready="true"]');
    for (const id of ['expert-load', 'category-similarity', 'token-routing']) {
      expect(await page.locator(`#${id} .note`).textContent()).toContain('not computed yet: run grin');
    }
    // the router comparison needs a second training: its command, with a button that copies it
    const hint = page.locator('#compare .command-hint');
    expect(await hint.textContent()).toContain('not computed yet');
    expect(await hint.locator('code').textContent()).toBe('pnpm grin eval compare --name bare');
    await hint.locator('button').click();
    await expect
      .poll(() => hint.locator('button').textContent())
      .toMatch(/^(Copied|Selected: press Ctrl\+C)$/);
    await page.screenshot({ path: join(artifacts, 'run-bare.png'), fullPage: true });
  });
});
