// Device entry of the `nccl` process group (bundled by tools/device/build-bundle.sh into
// .device/parallel.mjs, run by tools/device/run-parallel.sh): a world-size-1 NCCL group through the
// addon, its unique id through a Store; checks every collective against the values it must give
// (sendRecv to itself and the gathers into zeroed outputs must move the bytes; f32 and bf16), the
// refusals (host tensor, wrong output size), then times all-reduce at 1-256 MiB next to
// torch.distributed's (nccl, tools/device/torch_allreduce.py) in the same run. Prints one JSON object
// {bench: 'allreduce-nccl', device, results, ratios}; exits 1 if a check failed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cudaStatus, cudaSynchronize, ncclGroup, ncclStatus } from '../../packages/kernels-cuda/src/index.js';
import * as T from '../../packages/tensor/src/index.js';

const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
  process.stderr.write(`${ok ? 'ok  ' : 'FAIL'} ${what}\n`);
};
const hostValues = (t: T.Tensor) => Array.from(T.cast(t, 'f32').toArray() as Float32Array);
const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

const cuda = cudaStatus();
if (!cuda.available) {
  console.error(`run-parallel: no usable GPU: ${cuda.reason}`);
  process.exit(1);
}
const status = ncclStatus();
if (!status.available) {
  console.error(`run-parallel: ${status.reason}`);
  process.exit(1);
}
process.stderr.write(`nccl ${status.version} from ${status.path}\n`);

const table = new Map<string, Uint8Array>();
const store = {
  set: async (key: string, value: Uint8Array) => void table.set(key, value.slice()),
  get: async (key: string) => table.get(key) ?? new Uint8Array(0),
};
const group = await ncclGroup({ store, rank: 0, size: 1, device: 'cuda:0' });
check(table.get('nccl/world/unique-id')?.length === 128, 'the unique id went through the Store (128 bytes)');

const values = Array.from({ length: 1000 }, (_, i) => (i % 97) - 48.5);
for (const dtype of ['f32', 'bf16'] as const) {
  const make = () => T.cast(T.tensor(values, { device: 'cuda' }), dtype);
  const expected = hostValues(make());
  for (const op of ['sum', 'avg', 'max', 'min'] as const) {
    const x = make();
    group.allReduce(x, op);
    check(same(hostValues(x), expected), `${dtype} allReduce ${op} (one rank: unchanged)`);
  }
  const b = make();
  group.broadcast(b, 0);
  check(same(hostValues(b), expected), `${dtype} broadcast from 0`);
  const gathered = T.zeros([values.length], { device: 'cuda', dtype });
  group.allGather(make(), gathered);
  check(same(hostValues(gathered), expected), `${dtype} allGather into zeros holds the input`);
  const scattered = T.zeros([values.length], { device: 'cuda', dtype });
  group.reduceScatter(make(), scattered);
  check(same(hostValues(scattered), expected), `${dtype} reduceScatter into zeros holds the input`);
  const received = T.zeros([values.length], { device: 'cuda', dtype });
  group.sendRecv(make(), 0, received, 0);
  check(same(hostValues(received), expected), `${dtype} sendRecv to itself moves the bytes`);
}
const refused = (run: () => void, pattern: RegExp, what: string) => {
  try {
    run();
    check(false, `${what}: not refused`);
  } catch (error) {
    check(pattern.test((error as Error).message), `${what}: ${(error as Error).message}`);
  }
};
refused(() => group.allReduce(T.tensor([1, 2])), /is on cpu/, 'a host tensor is refused');
refused(
  () => group.allGather(T.zeros([4], { device: 'cuda' }), T.zeros([5], { device: 'cuda' })),
  /must hold 4 f32 elements/,
  'a wrong all-gather output is refused',
);

const sizesMiB = [1, 4, 16, 64, 256];
const reps = 20;
const ours: Record<number, number> = {};
for (const mib of sizesMiB) {
  const x = T.ones([(mib * 2 ** 20) / 4], { device: 'cuda' });
  for (let i = 0; i < 3; i++) group.allReduce(x);
  cudaSynchronize(0);
  const blocks: number[] = [];
  for (let b = 0; b < 5; b++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) group.allReduce(x);
    cudaSynchronize(0);
    blocks.push((performance.now() - start) / reps);
  }
  ours[mib] = blocks.sort((a, b) => a - b)[2]!;
  x.dispose();
}
group.destroy();

const here = dirname(fileURLToPath(import.meta.url));
const script = [join(here, '../tools/device/torch_allreduce.py'), join(here, 'torch_allreduce.py')].find(
  existsSync,
);
const torch = script
  ? spawnSync('python3', [script, '--mib', sizesMiB.join(','), '--reps', String(reps)], { encoding: 'utf8' })
  : null;
const torchMs: Record<number, number> = {};
let torchNccl = '';
for (const line of torch?.stdout.split('\n') ?? []) {
  if (!line.startsWith('BENCH ')) continue;
  const row = JSON.parse(line.slice(6));
  if (row.nccl) torchNccl = row.nccl;
  else torchMs[row.mib] = row.ms;
}
if (torch?.status !== 0)
  check(false, `torch.distributed side: ${torch?.stderr.slice(-400) ?? 'torch_allreduce.py not found'}`);

const results: Record<string, unknown> = {
  nccl: status.version,
  torch_nccl: torchNccl,
  checks_failed: failures,
};
const ratios: Record<string, number> = {};
for (const mib of sizesMiB) {
  results[`${mib}mib`] = { grin_ms: Number(ours[mib]!.toFixed(5)), torch_ms: torchMs[mib] ?? null };
  if (torchMs[mib]) ratios[`grin_vs_torch_${mib}mib`] = Number((torchMs[mib]! / ours[mib]!).toFixed(3));
}
console.log(
  JSON.stringify({ bench: 'allreduce-nccl', device: cuda.devices?.[0]?.name ?? 'cuda', results, ratios }),
);
process.exit(failures.length ? 1 : 0);
