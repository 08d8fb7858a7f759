// Parity with transformers' PhimoeForCausalLM (fixtures/*: float64 eager dumps, eval mode): logits,
// the next-token loss and EVERY parameter gradient, in f64 (tight) and f32 (1e-4 relative to each
// tensor's scale); the v5 fused layout loads to identical logits; RoPE tables match.
// Run: cd packages/model-grin && npx vitest run src/parity
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTensors, noGrad, type Tensor, zerosLike } from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from './checkpoint.js';
import { idsTensor, type ModelDType, nextTokenLoss, rotaryTables } from './model.js';

const fixtureDir = (name: string) => join(__dirname, '..', 'fixtures', name);
// mha-longrope-long: 48 tokens past a 32-token original context with the original Phi-3.5-MoE
// longrope (long factors and long mscale for every position), made by tools/reference/longrope_dump.py.
const LONG = 'mha-longrope-long';
const FIXTURES = ['gqa2-window5', 'mqa-e6', 'mha-longrope', LONG];
// f64 cannot reach 1e-9 against these dumps: transformers computes the RoPE tables and the
// attention softmax in float32 even for a float64 model, so the reference itself carries float32
// rounding (~1e-7 relative). Measured f64 errors are ~1e-6 of max|ref| at worst; f32 the same order.
const TOLERANCE: Record<ModelDType, number> = { f64: 1e-5, f32: 1e-4 };

function maxAbs(t: Tensor | ArrayLike<number>): number {
  const data = (Array.isArray(t) || ArrayBuffer.isView(t) ? t : (t as Tensor).toArray()) as ArrayLike<number>;
  let m = 0;
  for (let i = 0; i < data.length; i++) m = Math.max(m, Math.abs(data[i]!));
  return m;
}

/** Worst |ours - ref| / max|ref| over a tensor. */
function relativeError(ours: Tensor, ref: Tensor): number {
  const a = ours.toArray() as ArrayLike<number>;
  const b = ref.toArray() as ArrayLike<number>;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / Math.max(maxAbs(b), Number.MIN_VALUE);
}

/** Tolerance scaled to the tensor's magnitude: rtol with atol = rtol * max|ref|. */
function expectClose(ours: Tensor, ref: Tensor, tol: number, label: string): void {
  expectAllClose(ours, ref, { rtol: tol, atol: tol * maxAbs(ref) }, label);
}

const report: string[] = [];
afterAll(() => {
  if (report.length) console.log(`max errors, relative to max|ref| of each tensor:\n${report.join('\n')}`);
});

describe.each(FIXTURES)('fixture %s', (fixture) => {
  const dir = fixtureDir(fixture);
  const reference = loadTensors(join(dir, 'reference.safetensors'), { floatDType: 'f64' });
  const rows = JSON.parse(readFileSync(join(dir, 'ids.json'), 'utf8')) as number[][];

  it.each(['f64', 'f32'] as const)('logits, loss and every gradient match in %s', (dtype) => {
    const model = loadModel(dir, { dtype }).eval();
    const ids = idsTensor(rows);
    const { logits_BSV } = model.forward(ids);
    const loss = nextTokenLoss(logits_BSV, ids);
    loss.backward();
    const tol = TOLERANCE[dtype];
    const logitsError = relativeError(logits_BSV, reference.logits!);
    const lossError = Math.abs(loss.item() - reference.loss!.item()) / Math.abs(reference.loss!.item());
    expectClose(logits_BSV, reference.logits!, tol, `${fixture} ${dtype} logits`);
    expect(lossError).toBeLessThan(tol);
    let worst = { name: '', error: 0 };
    const gradNames = Object.keys(reference).filter((n) => n.startsWith('grad.'));
    expect(gradNames.length).toBe(model.parameters().length);
    for (const gradName of gradNames) {
      const name = gradName.slice('grad.'.length);
      // A parameter nothing reached (an expert no token picked) has no gradient: zeros.
      const grad = model.params.get(name)?.grad ?? zerosLike(model.params.get(name)!);
      const error = relativeError(grad!, reference[gradName]!);
      if (error >= worst.error) worst = { name, error };
      expectClose(grad!, reference[gradName]!, tol, `${fixture} ${dtype} ${gradName}`);
    }
    report.push(
      `  ${fixture} ${dtype}: logits ${logitsError.toExponential(2)}, loss ${lossError.toExponential(2)}, worst gradient ${worst.error.toExponential(2)} (${worst.name})`,
    );
    model.dispose();
  });

  it('loads the transformers v5 fused layout to identical logits', () => {
    const v5 = mkdtempSync(join(tmpdir(), 'grin-v5-'));
    try {
      copyFileSync(join(dir, 'config.json'), join(v5, 'config.json'));
      copyFileSync(join(dir, 'model-v5.safetensors'), join(v5, 'model.safetensors'));
      const original = loadModel(dir, { dtype: 'f64' });
      const fused = loadModel(v5, { dtype: 'f64' });
      const ids = idsTensor(rows);
      noGrad(() => {
        const a = original.forward(ids).logits_BSV.toArray();
        const b = fused.forward(ids).logits_BSV.toArray();
        expect(Array.from(b)).toEqual(Array.from(a));
      });
      for (const [name, t] of original.namedParameters())
        expect(Array.from(fused.params.get(name)!.toArray()), name).toEqual(Array.from(t.toArray()));
    } finally {
      rmSync(v5, { recursive: true, force: true });
    }
  });

  it.runIf(reference['rope.cos'] !== undefined)('RoPE tables match transformers (f32)', () => {
    const model = loadModel(dir, { dtype: 'f32' });
    const S = rows[0]!.length;
    const { cos, sin } = rotaryTables(model.config, 0, S, 'f32');
    expectAllClose(cos, reference['rope.cos']!, { atol: 1e-6, rtol: 1e-6 }, 'rope.cos');
    expectAllClose(sin, reference['rope.sin']!, { atol: 1e-6, rtol: 1e-6 }, 'rope.sin');
  });
});
