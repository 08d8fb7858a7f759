// cuda kernels that move or convert data: contiguous (strided copy), cast, full, arange, concat,
// slice_scatter and the in-place add_inplace / copy_inplace used by optimizers and accumulation.
// Every copy is one strided-copy kernel over merged axes. Mirrors cpu/layout.ts.
// Test: tests/layout.test.ts (GPU).
import {
  allocate,
  concatByCopies,
  itemSize,
  registerKernel,
  sliceScatterByCopies,
  type Tensor,
} from '@grin-moe/tensor';
import { addr, dev, deviceIndex, dtypeCode, native, valueBits } from '../backend.js';
import { broadcastStrides, layoutMeta } from '../layout.js';

/** dst[...] = src broadcast to dst's shape; both read through their strides. */
export function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.dtype !== src.dtype)
    throw new TypeError(`copy: dtypes differ (${dst.describe()} <- ${src.describe()})`);
  if (dst.size === 0) return;
  const { meta } = layoutMeta('copy', dst.shape, [dst.strides, broadcastStrides(src, dst.shape)]);
  native().copy(dev(dst), itemSize(dst.dtype), addr(dst), addr(src), dst.size, meta);
}

registerKernel(
  'contiguous',
  'cuda',
  ([x]) => {
    const out = allocate(x!.shape, x!.dtype, x!.device);
    copyInto(out, x!);
    return [out];
  },
  { strided: true },
);

registerKernel('cast', 'cuda', ([x], { dtype }) => {
  const out = allocate(x!.shape, dtype, x!.device);
  if (dtype === x!.dtype) native().copyBytes(dev(x!), addr(out), addr(x!), x!.size * itemSize(dtype));
  else native().cast(dev(x!), dtypeCode(x!.dtype), dtypeCode(dtype), addr(out), addr(x!), x!.size);
  return [out];
});

registerKernel('full', 'cuda', (_, { shape, dtype, value }, device) => {
  const out = allocate(shape, dtype, device);
  native().fill(deviceIndex(device), itemSize(dtype), addr(out), valueBits(dtype, value), out.size);
  return [out];
});

registerKernel('arange', 'cuda', (_, { start, step, n, dtype }, device) => {
  const out = allocate([n], dtype, device);
  native().arange(deviceIndex(device), dtypeCode(dtype), addr(out), start, step, n);
  return [out];
});

registerKernel('concat', 'cuda', (inputs, { axis }) => concatByCopies(inputs, axis, copyInto), {
  strided: true,
});

registerKernel(
  'slice_scatter',
  'cuda',
  ([base, src], { starts, steps }) => sliceScatterByCopies(base!, src!, starts, steps, copyInto),
  {
    strided: true,
  },
);

registerKernel(
  'add_inplace',
  'cuda',
  ([dst, src], { alpha }) => {
    const { meta } = layoutMeta('add_inplace', dst!.shape, [
      dst!.strides,
      broadcastStrides(src!, dst!.shape),
    ]);
    native().addInplace(dev(dst!), dtypeCode(dst!.dtype), addr(dst!), addr(src!), alpha, dst!.size, meta);
    return [];
  },
  { strided: true },
);

registerKernel(
  'copy_inplace',
  'cuda',
  ([dst, src]) => {
    copyInto(dst!, src!);
    return [];
  },
  { strided: true },
);
