// Headless Chromium for the end-to-end tests: Debian's /usr/bin/chromium driven by playwright-core
// (never a downloaded browser), a fresh profile per launch. `chromiumPath` is null when absent, and
// the tests then skip with a message (.ci/run installs chromium with apt-get).
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const chromiumPath =
  ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? null;

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** A browser context over a fresh profile directory (playwright passes it as --user-data-dir). */
export async function launchChromium(extraArgs: string[] = []): Promise<BrowserContext> {
  if (!chromiumPath) throw new Error('no chromium at /usr/bin/chromium: apt-get install -y chromium');
  const profile = mkdtempSync(join(tmpdir(), 'grin-dashboard-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [...chromiumArgs, ...extraArgs],
    viewport: { width: 1280, height: 1800 },
  });
}
