// Replays a PyTorch router dump (DESIGN.md's router reference format) through one of our
// routers and measures the differences: the engine of `grin check-router` and of the parity tests.
// Test: cd packages/router-sparsemixer && npx vitest run src
import { cast, loadTensors, mul, noGrad, openSafetensors, sum, type Tensor } from '@grin-moe/tensor';
import { getRouter } from './router.js';

export interface ReferenceDump {
  path: string;
  jitterEps: number;
  tensors: Record<string, Tensor>;
}

const REQUIRED = [
  'scores',
  'exp1',
  'u1',
  'exp2',
  'u2',
  'upstream_grad',
  'multiplier',
  'selected',
  'grad_scores',
  'eval_multiplier',
  'eval_selected',
];

export function readReference(path: string): ReferenceDump {
  const tensors = loadTensors(path);
  const missing = REQUIRED.filter((n) => !(n in tensors));
  if (missing.length)
    throw new Error(
      `${path}: router reference lacks ${missing.join(', ')} (expected: ${REQUIRED.join(', ')})`,
    );
  const meta = readMetadata(path);
  const jitterEps = Number(meta.jitter_eps);
  if (!Number.isFinite(jitterEps))
    throw new Error(`${path}: metadata jitter_eps must be a number, got '${meta.jitter_eps}'`);
  return { path, jitterEps, tensors };
}

function readMetadata(path: string): Record<string, string> {
  const file = openSafetensors(path);
  try {
    return file.metadata;
  } finally {
    file.close();
  }
}

export interface Comparison {
  name: string;
  maxAbs: number;
  maxRel: number;
  /** For index outputs: positions that differ. */
  mismatches?: number;
  ok: boolean;
}

export interface CheckResult {
  dtype: string;
  tokens: number;
  experts: number;
  comparisons: Comparison[];
  ok: boolean;
}

/** Tolerances of the parity contract: 1e-6 relative in f64, 1e-4 in f32. */
export function toleranceFor(dtype: string): number {
  return dtype === 'f64' ? 1e-6 : 1e-4;
}

export function checkRouterAgainst(dump: ReferenceDump, routerName = 'sparsemixer-v2'): CheckResult {
  const router = getRouter(routerName);
  const t = dump.tensors;
  const scores = t.scores!;
  const dtype = scores.dtype;
  const rtol = toleranceFor(dtype);
  const logits = cast(scores, dtype).setRequiresGrad();
  const train = router.route(logits, {
    training: true,
    jitterEps: dump.jitterEps,
    draws: { exponential: [t.exp1!, t.exp2!], uniform: [t.u1!, t.u2!] },
  });
  sum(mul(train.weights_TK, cast(t.upstream_grad!, dtype))).backward();
  const evalOut = noGrad(() => router.route(scores, { training: false, jitterEps: dump.jitterEps }));
  const comparisons = [
    compareIndices('selected', train.experts_TK, t.selected!),
    compareValues('multiplier', train.weights_TK, t.multiplier!, rtol),
    compareValues('grad_scores', logits.grad!, t.grad_scores!, rtol),
    compareIndices('eval_selected', evalOut.experts_TK, t.eval_selected!),
    compareValues('eval_multiplier', evalOut.weights_TK, t.eval_multiplier!, rtol),
  ];
  return {
    dtype,
    tokens: scores.shape[0]!,
    experts: scores.shape[1]!,
    comparisons,
    ok: comparisons.every((c) => c.ok),
  };
}

function compareValues(name: string, ours: Tensor, ref: Tensor, rtol: number): Comparison {
  const a = ours.toArray() as Float64Array;
  const b = ref.toArray() as Float64Array;
  let maxAbs = 0;
  let maxRel = 0;
  let ok = a.length === b.length;
  const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = Math.abs(a[i]! - b[i]!);
    maxAbs = Math.max(maxAbs, d);
    // Relative to the element, with the tensor's scale as a floor so exact zeros do not divide by 0.
    const rel = d / Math.max(Math.abs(b[i]!), scale * 1e-3, Number.MIN_VALUE);
    maxRel = Math.max(maxRel, rel);
    if (!(rel <= rtol)) ok = false;
  }
  return { name, maxAbs, maxRel, ok };
}

function compareIndices(name: string, ours: Tensor, ref: Tensor): Comparison {
  const a = ours.toArray();
  const b = ref.toArray();
  let mismatches = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) mismatches++;
  return {
    name,
    maxAbs: mismatches ? 1 : 0,
    maxRel: mismatches ? 1 : 0,
    mismatches,
    ok: mismatches === 0 && a.length === b.length,
  };
}
