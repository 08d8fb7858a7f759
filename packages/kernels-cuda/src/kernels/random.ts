// cuda kernels for draws at a Philox reservation (csrc/random.cu): `random` (f32 uniform, normal,
// exponential, drawn in place: nothing is drawn on the host or uploaded) and `random_scale` (the
// MoE input jitter x * U, fused; its backward reruns it). Mirrors packages/tensor/src/cpu/random.ts.
// Test: tests/random.test.ts (GPU).
import { allocate, registerKernel } from '@grin-moe/tensor';
import { addr, dev, deviceIndex, dtypeCode, native } from '../backend.js';

const DISTRIBUTIONS = { uniform: 0, normal: 1, exponential: 2 } as const;

registerKernel('random', 'cuda', (_inputs, { shape, dtype, distribution, a, b, key, counter }, device) => {
  if (dtype !== 'f32')
    throw new TypeError(`random (cuda): draws are f32 on cuda (cast afterwards), got ${dtype}`);
  const out = allocate(shape, 'f32', device);
  native().random(
    deviceIndex(device),
    DISTRIBUTIONS[distribution],
    addr(out),
    out.size,
    key[0],
    key[1],
    counter[0],
    counter[1],
    a,
    b,
  );
  return [out];
});

registerKernel('random_scale', 'cuda', ([x], { low, high, key, counter }) => {
  if (x!.dtype !== 'f32' && x!.dtype !== 'bf16')
    throw new TypeError(`random_scale (cuda): x must be f32 or bf16, got ${x!.describe()}`);
  const out = allocate(x!.shape, x!.dtype, x!.device);
  native().randomScale(
    dev(x!),
    dtypeCode(x!.dtype),
    addr(out),
    addr(x!),
    x!.size,
    low,
    high,
    key[0],
    key[1],
    counter[0],
    counter[1],
  );
  return [out];
});
