#!/usr/bin/env node
// Builds the CUDA addon build/grin_cuda.node with nvcc: every csrc/*.cu and *.cpp to an object
// (Hopper sm_90a code plus compute_90 PTX, in parallel, skipped when up to date), then one shared
// object with the CUDA runtime linked statically. cuBLAS is NOT linked (dlopen at run time).
// No nvcc or no Node headers: prints why and exits 0, so installs and CI never fail on it.
// Usage: node scripts/build-native.mjs [--if-possible] (compile errors become warnings) [--force]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const csrc = join(root, 'csrc');
const out = join(root, 'build');
const objDir = join(out, 'obj');
const target = join(out, 'grin_cuda.node');
const lenient = process.argv.includes('--if-possible');
const force = process.argv.includes('--force');
const say = (msg) => console.log(`[kernels-cuda] ${msg}`);

function findNvcc() {
  const candidates = [
    process.env.NVCC,
    process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin/nvcc'),
    process.env.CUDA_PATH && join(process.env.CUDA_PATH, 'bin/nvcc'),
    '/usr/local/cuda/bin/nvcc',
  ].filter(Boolean);
  try {
    candidates.unshift(execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim());
  } catch {}
  return candidates.find((c) => c && existsSync(c));
}

function findNodeHeaders() {
  const candidates = [
    process.env.NODE_HEADERS_DIR,
    resolve(process.execPath, '../../include/node'),
    '/usr/include/node',
    '/usr/local/include/node',
    join(homedir(), '.cache/node-gyp', process.versions.node, 'include/node'),
  ].filter(Boolean);
  return candidates.find((c) => existsSync(join(c, 'node_api.h')));
}

const nvcc = findNvcc();
if (!nvcc) {
  say('nvcc not found (PATH, $CUDA_HOME, /usr/local/cuda): skipping the native build.');
  say("The package still imports; cudaStatus() reports 'native addon not built'.");
  process.exit(0);
}
const nodeHeaders = findNodeHeaders();
if (!nodeHeaders) {
  say("Node's headers (node_api.h) not found: set NODE_HEADERS_DIR; skipping the native build.");
  process.exit(0);
}

const sources = readdirSync(csrc).filter((f) => f.endsWith('.cu') || f.endsWith('.cpp'));
const headers = readdirSync(csrc).filter((f) => f.endsWith('.h') || f.endsWith('.cuh'));
const newestHeader = Math.max(0, ...headers.map((h) => statSync(join(csrc, h)).mtimeMs));
const common = ['-O3', '-std=c++17', '-Xcompiler', '-fPIC', '-I', csrc, '-I', nodeHeaders];
const gencode = ['-gencode', 'arch=compute_90a,code=sm_90a', '-gencode', 'arch=compute_90,code=compute_90'];

// ptxas's C7512 ("wgmma.mma_async instructions are serialized due to insufficient register
// resources") is only an info line, yet it means every wgmma waits for the previous one: the
// attention forward ran with it unnoticed for a while. A build that has it fails.
const SERIALIZED_WGMMA = /\(C7512\)/;

function run(args, label) {
  return new Promise((done) => {
    const child = spawn(nvcc, args, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      process.stderr.write(chunk);
    });
    child.on('close', (code) => {
      if (code !== 0) done(`${label} (exit ${code})`);
      else if (SERIALIZED_WGMMA.test(stderr))
        done(
          `${label}: ptxas serialized a kernel's wgmma instructions (C7512, above): it needs fewer registers`,
        );
      else done(null);
    });
    child.on('error', (error) => done(`${label}: ${error.message}`));
  });
}

function fail(message) {
  if (lenient) {
    say(`WARNING: native build failed: ${message}; the package imports without it.`);
    process.exit(0);
  }
  console.error(`[kernels-cuda] native build failed: ${message}`);
  process.exit(1);
}

mkdirSync(objDir, { recursive: true });
const jobs = sources.map((src) => {
  const obj = join(objDir, src.replace(/\.(cu|cpp)$/, '.o'));
  const stale =
    force ||
    !existsSync(obj) ||
    statSync(obj).mtimeMs < Math.max(statSync(join(csrc, src)).mtimeMs, newestHeader);
  return { src, obj, stale };
});
const todo = jobs.filter((j) => j.stale);
say(`nvcc ${nvcc}; compiling ${todo.length} of ${jobs.length} sources`);
const started = Date.now();
const queue = [...todo];
const errors = [];
await Promise.all(
  Array.from({ length: Math.min(availableParallelism(), Math.max(1, queue.length)) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const args = [
        ...common,
        ...(job.src.endsWith('.cu') ? gencode : ['-x', 'cu', ...gencode]),
        '-c',
        join(csrc, job.src),
        '-o',
        job.obj,
      ];
      const error = await run(args, job.src);
      if (error) {
        errors.push(error);
        rmSync(job.obj, { force: true }); // so that the next build compiles it again
      } else say(`  ${job.src}`);
    }
  }),
);
if (errors.length) fail(errors.join(', '));

const newestObj = Math.max(...jobs.map((j) => statSync(j.obj).mtimeMs));
if (!force && existsSync(target) && statSync(target).mtimeMs >= newestObj) {
  say(`${target} is up to date`);
  process.exit(0);
}
const link = [
  '-shared',
  '-cudart',
  'static',
  ...gencode,
  '-o',
  target,
  ...jobs.map((j) => j.obj),
  '-ldl',
  '-lpthread',
  '-lrt',
];
const linkError = await run(link, 'link');
if (linkError) fail(linkError);
say(`built ${target} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
