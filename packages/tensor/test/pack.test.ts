// The package installs on its own: pack the built tarball, install it into an empty folder
// outside the workspace with plain npm, import it and compute a gradient.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const pkgDir = resolve(import.meta.dirname, '..');

describe('standalone install', () => {
  it('packs, installs into an empty folder and computes a gradient', () => {
    if (!existsSync(join(pkgDir, 'dist/index.js')))
      execFileSync('pnpm', ['run', 'build'], { cwd: pkgDir, stdio: 'pipe' });
    const out = mkdtempSync(join(tmpdir(), 'grin-pack-'));
    execFileSync('pnpm', ['pack', '--pack-destination', out], { cwd: pkgDir, stdio: 'pipe' });
    const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    const app = join(out, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(out, tarball!)], {
      cwd: app,
      stdio: 'pipe',
    });
    writeFileSync(
      join(app, 'main.mjs'),
      `import * as T from '@grin-moe/tensor';
const w = T.tensor([[1, 2], [3, 4]], { requiresGrad: true });
const x = T.tensor([[0.5], [-1]]);
T.sum(T.square(T.matmul(w, x))).backward();
console.log(JSON.stringify(Array.from(w.grad.toArray())));`,
    );
    const printed = execFileSync(process.execPath, ['main.mjs'], { cwd: app }).toString().trim();
    // d/dW sum((Wx)^2) = 2 (Wx) x^T with Wx = [-1.5, -2.5]
    expect(JSON.parse(printed)).toEqual([-1.5, 3, -2.5, 5]);
  }, 120_000);
});
