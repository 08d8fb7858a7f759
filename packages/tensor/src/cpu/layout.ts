// CPU kernels that move or convert data: contiguous copies, casts, creation, concatenation,
// slice scatter, and the in-place updates used outside autograd.
// Test: cd packages/tensor && npx vitest run src/ops

import type { DType } from '../core/dtype.js';
import { registerKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { bf16BitsToF32 as bf16ToF32, f32ToBf16Bits as f32ToBf16 } from '../io/half-float.js';
import { concatByCopies, sliceScatterByCopies } from '../ops/compose.js';
import { allocate } from '../ops/dispatch.js';
import { broadcastStrides, dense, raw } from './backend.js';
import { requireNumeric } from './elementwise.js';
import { copyStrided, forEachRow, mergeAxes, rowLoop3 } from './strided.js';

registerKernel(
  'contiguous',
  'cpu',
  ([x]) => {
    const out = allocate(x!.shape, x!.dtype, x!.device);
    copyStrided(dense(out), out.shape, out.strides, 0, raw(x!), x!.strides, x!.offset);
    return [out];
  },
  { strided: true },
);

function convert(value: number, to: DType): number {
  if (to === 'i32') return Math.trunc(value);
  if (to === 'bool') return value !== 0 ? 1 : 0;
  return value;
}

registerKernel('cast', 'cpu', ([x], { dtype }) => {
  const out = allocate(x!.shape, dtype, x!.device);
  const src = dense(x!);
  const dst = dense(out);
  if (x!.dtype === 'bf16' && dtype === 'bf16') dst.set(src);
  else if (x!.dtype === 'bf16')
    for (let i = 0; i < src.length; i++) dst[i] = convert(bf16ToF32(src[i]!), dtype);
  else if (dtype === 'bf16') for (let i = 0; i < src.length; i++) dst[i] = f32ToBf16(src[i]!);
  else for (let i = 0; i < src.length; i++) dst[i] = convert(src[i]!, dtype);
  return [out];
});

registerKernel('full', 'cpu', (_, { shape, dtype, value }, device) => {
  const out = allocate(shape, dtype, device);
  dense(out).fill(dtype === 'bf16' ? f32ToBf16(value) : convert(value, dtype));
  return [out];
});

registerKernel('arange', 'cpu', (_, { start, step, n, dtype }, device) => {
  const out = allocate([n], dtype, device);
  const dst = dense(out);
  for (let i = 0; i < n; i++) dst[i] = start + i * step;
  return [out];
});

registerKernel('concat', 'cpu', (inputs, { axis }) => concatByCopies(inputs, axis, copyInto), {
  strided: true,
});

/** dst[...] = src (broadcast), elementwise over strided views of CPU storage. */
export function copyInto(dst: Tensor, src: Tensor): void {
  copyStrided(
    raw(dst),
    dst.shape,
    dst.strides,
    dst.offset,
    raw(src),
    broadcastStrides(src, dst.shape),
    src.offset,
  );
}

registerKernel(
  'slice_scatter',
  'cpu',
  ([base, src], { starts, steps }) => sliceScatterByCopies(base!, src!, starts, steps, copyInto),
  {
    strided: true,
  },
);

registerKernel(
  'add_inplace',
  'cpu',
  ([dst, src], { alpha }) => {
    requireNumeric('add_inplace', dst!, src!);
    const d = raw(dst!);
    const rows = mergeAxes(dst!.shape, [dst!.strides, broadcastStrides(src!, dst!.shape)]);
    const loop = rowLoop3(`a + (${alpha}) * b`);
    const [sd, ss] = rows.innerStride as [number, number];
    forEachRow(rows, [dst!.offset, src!.offset], (b) =>
      loop(d, d, raw(src!), b[0]!, b[0]!, b[1]!, rows.inner, sd, sd, ss),
    );
    return [];
  },
  { strided: true },
);

registerKernel(
  'copy_inplace',
  'cpu',
  ([dst, src]) => {
    copyInto(dst!, src!);
    return [];
  },
  { strided: true },
);
