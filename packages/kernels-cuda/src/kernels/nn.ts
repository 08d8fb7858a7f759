// cuda kernels for the neural-network ops: softmax / log_softmax, the fused attention softmax and
// its backward, layer_norm (+ backward; mean and rstd are f32 on cuda whatever x's dtype),
// cross_entropy (+ backward), rotate-half rope and topk. Mirrors cpu/nn.ts, fused.ts, indexing.ts.
// Test: tests/nn.test.ts (GPU).
import { allocate, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';
import { broadcastStrides, layoutMeta } from '../layout.js';

function requireFloat(op: string, t: Tensor, name: string): void {
  if (t.dtype !== 'f32' && t.dtype !== 'bf16')
    throw new TypeError(`${op} (cuda): ${name} must be f32 or bf16, got ${t.describe()}`);
}

function aroundAxis(shape: readonly number[], axis: number) {
  const outer = shape.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = shape.slice(axis + 1).reduce((a, d) => a * d, 1);
  return { outer, n: shape[axis]!, inner };
}

for (const log of [false, true]) {
  const op = log ? 'log_softmax' : 'softmax';
  registerKernel(op, 'cuda', ([x], { axis }) => {
    requireFloat(op, x!, 'x');
    const out = allocate(x!.shape, x!.dtype, x!.device);
    const { outer, n, inner } = aroundAxis(x!.shape, axis);
    native().softmax(dev(x!), dtypeCode(x!.dtype), log ? 1 : 0, addr(out), addr(x!), outer, n, inner);
    return [out];
  });
}

registerKernel('attention_softmax', 'cuda', ([x], { scale, causal, window }) => {
  requireFloat('attention_softmax', x!, 'scores');
  const Skv = x!.shape[x!.rank - 1]!;
  const S = x!.shape[x!.rank - 2]!;
  const out = allocate(x!.shape, x!.dtype, x!.device);
  const rows = Skv === 0 ? 0 : x!.size / Skv;
  native().attentionSoftmax(
    dev(x!),
    dtypeCode(x!.dtype),
    addr(out),
    addr(x!),
    rows,
    S,
    Skv,
    scale,
    causal ? 1 : 0,
    window,
  );
  return [out];
});

registerKernel('attention_softmax_backward', 'cuda', ([y, g], { scale }) => {
  requireFloat('attention_softmax_backward', y!, 'y');
  const n = y!.shape[y!.rank - 1]!;
  const out = allocate(y!.shape, y!.dtype, y!.device);
  const rows = n === 0 ? 0 : y!.size / n;
  native().attentionSoftmaxBackward(
    dev(y!),
    dtypeCode(y!.dtype),
    addr(out),
    addr(y!),
    addr(g!),
    rows,
    n,
    scale,
  );
  return [out];
});

// weight and bias shapes and dtypes: checked by the op (tensor's ops/nn.ts layerNorm).
registerKernel('layer_norm', 'cuda', (inputs, { eps, hasWeight, hasBias }) => {
  const x = inputs[0]!;
  const weight = hasWeight ? inputs[1] : undefined;
  const bias = hasBias ? inputs[hasWeight ? 2 : 1] : undefined;
  requireFloat('layer_norm', x, 'x');
  const d = x.shape[x.rank - 1]!;
  const rowShape = x.shape.slice(0, -1);
  const y = allocate(x.shape, x.dtype, x.device);
  const mean = allocate(rowShape, 'f32', x.device);
  const rstd = allocate(rowShape, 'f32', x.device);
  const rows = d === 0 ? 0 : x.size / d;
  native().layerNorm(
    dev(x),
    dtypeCode(x.dtype),
    addr(y),
    addr(mean),
    addr(rstd),
    addr(x),
    weight ? addr(weight) : 0,
    bias ? addr(bias) : 0,
    rows,
    d,
    eps,
  );
  return [y, mean, rstd];
});

registerKernel('layer_norm_backward', 'cuda', (inputs, { hasWeight }) => {
  const [g, x, mean, rstd] = inputs as [Tensor, Tensor, Tensor, Tensor];
  requireFloat('layer_norm_backward', x, 'x');
  if (g.dtype !== x.dtype || g.rank !== x.rank || g.shape.some((s, i) => s !== x.shape[i]))
    throw new RangeError(`layer_norm_backward: grad ${g.describe()} does not match x ${x.describe()}`);
  if (mean.dtype !== 'f32' || rstd.dtype !== 'f32')
    throw new TypeError(
      'layer_norm_backward (cuda): mean and rstd must be f32, as the cuda layer_norm makes them',
    );
  const d = x.shape[x.rank - 1]!;
  const dx = allocate(x.shape, x.dtype, x.device);
  const dweight = allocate([d], x.dtype, x.device);
  const dbias = allocate([d], x.dtype, x.device);
  const rows = d === 0 ? 0 : x.size / d;
  const weight = hasWeight ? inputs[4]! : undefined;
  native().layerNormBackward(
    dev(x),
    dtypeCode(x.dtype),
    addr(dx),
    addr(dweight),
    addr(dbias),
    addr(g),
    addr(x),
    addr(mean),
    addr(rstd),
    weight ? addr(weight) : 0,
    rows,
    d,
  );
  return [dx, dweight, dbias];
});

const REDUCTIONS = { none: 0, mean: 1, sum: 2 } as const;

registerKernel('cross_entropy', 'cuda', ([logits, targets], { ignoreIndex, reduction }) => {
  requireFloat('cross_entropy', logits!, 'logits'); // shapes, targets' dtype: checked by the op (ops/nn.ts)
  const [n, v] = logits!.shape as [number, number];
  const out = allocate(reduction === 'none' ? [n] : [], logits!.dtype, logits!.device);
  native().crossEntropy(
    dev(logits!),
    dtypeCode(logits!.dtype),
    REDUCTIONS[reduction],
    addr(out),
    addr(logits!),
    addr(targets!),
    n,
    v,
    ignoreIndex,
  );
  return [out];
});

registerKernel('cross_entropy_backward', 'cuda', ([g, logits, targets], { ignoreIndex, reduction }) => {
  requireFloat('cross_entropy_backward', logits!, 'logits');
  const [n, v] = logits!.shape as [number, number];
  const want = reduction === 'none' ? 1 : 0;
  if (g!.rank !== want || (want === 1 && g!.shape[0] !== n) || g!.dtype !== logits!.dtype)
    throw new RangeError(
      `cross_entropy_backward: grad ${g!.describe()} must be ${logits!.dtype}${want ? `[${n}]` : '[]'}`,
    );
  const out = allocate(logits!.shape, logits!.dtype, logits!.device);
  native().crossEntropyBackward(
    dev(logits!),
    dtypeCode(logits!.dtype),
    REDUCTIONS[reduction],
    addr(out),
    addr(g!),
    addr(logits!),
    addr(targets!),
    n,
    v,
    ignoreIndex,
  );
  return [out];
});

registerKernel(
  'rope',
  'cuda',
  ([x, cos, sin], { transpose }) => {
    requireFloat('rope', x!, 'x'); // shapes: checked by the op (ops/nn.ts rope)
    const d = x!.shape[x!.rank - 1]!;
    const out = allocate(x!.shape, x!.dtype, x!.device);
    const rowShape = x!.shape.slice(0, -1);
    const cs = broadcastStrides(cos!, x!.shape);
    const ss = broadcastStrides(sin!, x!.shape);
    const { meta } = layoutMeta('rope', rowShape, [
      out.strides.slice(0, -1),
      x!.strides.slice(0, -1),
      cs.slice(0, -1),
      ss.slice(0, -1),
    ]);
    const rows = rowShape.reduce((a, s) => a * s, 1);
    native().rope(
      dev(x!),
      dtypeCode(x!.dtype),
      addr(out),
      addr(x!),
      addr(cos!),
      addr(sin!),
      rows,
      d,
      meta,
      x!.strides[x!.rank - 1]!,
      cs[cs.length - 1]!,
      ss[ss.length - 1]!,
      transpose ? 1 : 0,
    );
    return [out];
  },
  { strided: true },
);

registerKernel('topk', 'cuda', ([x], { k, axis }) => {
  const { outer, n, inner } = aroundAxis(x!.shape, axis); // k: checked by the op (ops/indexing.ts topk)
  const shape = x!.shape.map((d, i) => (i === axis ? k : d));
  const values = allocate(shape, x!.dtype, x!.device);
  const indices = allocate(shape, 'i32', x!.device);
  native().topk(dev(x!), dtypeCode(x!.dtype), addr(values), addr(indices), addr(x!), outer, n, inner, k);
  return [values, indices];
});
