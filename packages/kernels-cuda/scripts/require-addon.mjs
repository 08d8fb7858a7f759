#!/usr/bin/env node
// prepublishOnly of @grin-moe/kernels-cuda: users who install it from the registry have no nvcc,
// so the package ships the prebuilt build/grin_cuda.node (sm_90a + compute_90 PTX, built by
// scripts/build-native.mjs). Publishing without it, or with one older than csrc/, is refused.
// Check: node scripts/require-addon.mjs [PACKAGE_DIR]; apps/trainer/src/packaging.test.ts checks
// that a built addon is in the tarball and is the copy that loads after npm install.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const addon = join(root, 'build', 'grin_cuda.node');
const fail = (message) => {
  console.error(`[kernels-cuda] refusing to publish: ${message}`);
  process.exit(1);
};
if (!existsSync(addon))
  fail(
    `${addon} is missing; run 'pnpm --filter @grin-moe/kernels-cuda build:native' where nvcc is (CUDA 12.8+)`,
  );
const csrc = join(root, 'csrc');
const newest = readdirSync(csrc)
  .map((file) => ({ file, mtime: statSync(join(csrc, file)).mtimeMs }))
  .sort((a, b) => b.mtime - a.mtime)[0];
if (newest && newest.mtime > statSync(addon).mtimeMs)
  fail(
    `${addon} is older than csrc/${newest.file}; rebuild it with 'pnpm --filter @grin-moe/kernels-cuda build:native'`,
  );
console.log(`[kernels-cuda] shipping ${addon} (${(statSync(addon).size / 2 ** 20).toFixed(1)} MiB)`);
