// Publishing, tried as a user would: every library package is packed (`pnpm pack`, which turns
// workspace:* into versions), the tarballs are installed with plain npm into an empty folder (the
// tarballs plus the npm registry, nothing else), and each package's README example, the ```ts
// block after its `<!-- example: runs as is ... -->` line, runs there with node. kernels-cuda
// must import and say why cuda is unavailable (or list the GPUs); where the workspace built the
// addon, the tarball ships it and the installed copy is the one that loads.
// Hosted by the trainer because it depends on every library package, so turbo builds them first.
// Run: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/packaging
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packagesDir = resolve(import.meta.dirname, '../../../packages');
const libraries = readdirSync(packagesDir)
  .filter((name) => existsSync(join(packagesDir, name, 'package.json')))
  .sort();
const MARK = '<!-- example: runs as is;';
const root = mkdtempSync(join(tmpdir(), 'grin-pack-'));
const app = join(root, 'app');
const tarballs: Record<string, string> = {};
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The README's marked example, as the TypeScript a user would paste. */
export function readmeExample(readme: string, where: string): string {
  const at = readme.indexOf(MARK);
  if (at < 0) throw new Error(`${where}: no '${MARK} ...' line before a runnable example`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!block) throw new Error(`${where}: no \`\`\`ts block after the example mark`);
  return block[1]!;
}

const run = (command: string, args: string[], cwd: string, timeout = 60_000) =>
  execFileSync(command, args, { cwd, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });

beforeAll(() => {
  const packed = join(root, 'tarballs');
  for (const name of libraries) {
    run('pnpm', ['pack', '--pack-destination', packed], join(packagesDir, name), 120_000);
  }
  for (const file of readdirSync(packed)) {
    const name = libraries.find((n) => file === `grin-moe-${n}-${version(n)}.tgz`);
    if (name) tarballs[name] = join(packed, file);
  }
  mkdirSync(app);
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({ name: 'pack-check', private: true, type: 'module' }),
  );
  run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      ...Object.values(tarballs),
    ],
    app,
    480_000,
  );
}, 600_000);

function version(name: string): string {
  return (JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** What an example prints where the value is known in advance (the others print model outputs). */
const printed: Record<string, RegExp> = {
  parallel: /Float32Array\(3\) \[ 11, 22, 33 \],\s+Float32Array\(3\) \[ 11, 22, 33 \]/,
  hub: /^hf-home\/hub\/models--tiny--model\/snapshots\/c{40}\n/,
  'model-grin': /^5 /,
  'kernels-cuda': /^(native addon not built|no usable CUDA driver or GPU|cuBLAS|\[)/,
};

const installed = (name: string) => join(app, 'node_modules', '@grin-moe', name);

describe('packed packages, installed with npm', () => {
  it('packs every library package with its license, readme, built code and no workspace: ranges', () => {
    expect(Object.keys(tarballs).sort()).toEqual(libraries);
    for (const name of libraries) {
      for (const file of ['LICENSE', 'README.md', 'package.json', 'dist/index.js'])
        expect(existsSync(join(installed(name), file)), `${name}: ${file}`).toBe(true);
      const manifest = readFileSync(join(installed(name), 'package.json'), 'utf8');
      expect(manifest, name).not.toContain('workspace:');
      const { exports } = JSON.parse(manifest) as { exports: Record<string, Record<string, string>> };
      // Every export target ships, type declarations included (a GRIN_FAST_BUILD=1 build, as
      // `pnpm train` makes, skips them: `pnpm build` or `pnpm test` rebuilds with them).
      for (const entry of Object.values(exports))
        for (const target of Object.values(entry))
          expect(existsSync(join(installed(name), target)), `${name}: ${target} (run pnpm build)`).toBe(true);
    }
  });

  it.each(libraries)("runs %s's README example", (name) => {
    const source = readmeExample(
      readFileSync(join(packagesDir, name, 'README.md'), 'utf8'),
      `packages/${name}/README.md`,
    );
    const script = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const file = join(app, `example-${name}.mjs`);
    writeFileSync(file, script);
    const output = run(process.execPath, [file], app, 120_000);
    expect(output.trim().length, `${name}: the example prints its result`).toBeGreaterThan(0);
    if (printed[name]) expect(output, name).toMatch(printed[name]);
  });

  it('kernels-cuda imports and reports its status; a built addon ships and is the one that loads', () => {
    const built = existsSync(join(packagesDir, 'kernels-cuda', 'build', 'grin_cuda.node'));
    const shipped = join(installed('kernels-cuda'), 'build', 'grin_cuda.node');
    expect(existsSync(shipped)).toBe(built);
    const status = JSON.parse(
      run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "import { cudaStatus } from '@grin-moe/kernels-cuda'; console.log(JSON.stringify(cudaStatus()))",
        ],
        app,
      ),
    ) as { available: boolean; reason?: string; addonPath?: string };
    if (status.available) return; // a GPU machine: the addon loaded and found a device
    expect(status.reason).toMatch(/\S/);
    if (built) {
      expect(status.reason).not.toMatch(/native addon not built/);
      expect(status.addonPath).toBe(shipped);
    } else expect(status.reason).toMatch(/^native addon not built/);
  });
});
