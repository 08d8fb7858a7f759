// DPO numerics on the small PhimoeForCausalLM of packages/model-grin/fixtures/gqa2-window5 (f64):
// summed completion log-probs with the prompt masked against a host log-softmax of transformers' own
// logits from that fixture (the chosen rows are its ids; the reference model is the same one with
// lm_head.bias + 0.3 sin(v), whose logits are the dump's plus that shift), the sigmoid loss against
// its closed form, every checked gradient against central finite differences, log-probs of chosen
// and rejected, loss and gradients against an independent NumPy forward (tools/reference/dpo_numpy.py,
// committed as fixtures/dpo/numpy-reference.json), and, when
// apps/trainer/fixtures/dpo/reference.safetensors exists (tools/reference/dpo_dump.py), log-probs,
// rewards, loss and gradients against PyTorch within 1e-5 (f64) and 1e-4 (f32) of each tensor's scale.
// Run: cd apps/trainer && npx vitest run src/post/losses
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GrinModel, loadModel, type ModelDType } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { dpoLoss, maskedTargets, sequenceLogProbs } from './losses.js';

const MODEL_DIR = join(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  'packages',
  'model-grin',
  'fixtures',
  'gqa2-window5',
);
const DUMP = join(__dirname, '..', '..', 'fixtures', 'dpo', 'reference.safetensors');
const NUMPY = join(__dirname, '..', '..', 'fixtures', 'dpo', 'numpy-reference.json');
const BETA = 0.1;
const rows = JSON.parse(readFileSync(join(MODEL_DIR, 'ids.json'), 'utf8')) as number[][];
const S = rows[0]!.length;

/** The pairs of dpo_dump.py: chosen = the fixture's rows, rejected = the other row's completion. */
const [a, b] = rows as [number[], number[]];
const chosen = [a, b];
const rejected = [
  [...a.slice(0, 4), ...b.slice(4)],
  [...b.slice(0, 5), ...a.slice(5)],
];
const mask = (prompt: number, pad: number) =>
  Array.from({ length: S }, (_, t) => (t >= prompt && t < S - pad ? 1 : 0));
const chosenMask = [mask(4, 0), mask(5, 2)];
const rejectedMask = [mask(4, 0), mask(5, 0)];
const P = 2;

const biasShift = (v: number) => 0.3 * Math.sin(v);

function models(dtype: ModelDType): { policy: GrinModel; reference: GrinModel } {
  const policy = loadModel(MODEL_DIR, { dtype }).eval();
  const reference = loadModel(MODEL_DIR, { dtype }).eval();
  const bias = reference.params.get('lm_head.bias')!;
  const shifted = Array.from(bias.toArray() as ArrayLike<number>, (x, v) => x + biasShift(v));
  T.noGrad(() => T.copyInPlace(bias, T.tensor(shifted, { shape: [...bias.shape], dtype })));
  return { policy, reference };
}

/** chosen then rejected rows and their next-token targets (completion tokens only). */
function batch() {
  const ids = Int32Array.from([...chosen, ...rejected].flat());
  const learned = Uint8Array.from([...chosenMask, ...rejectedMask].flat());
  return {
    ids: T.tensor(ids, { shape: [2 * P, S], dtype: 'i32' }),
    targets: T.tensor(maskedTargets(ids, learned, 2 * P, S), { shape: [2 * P, S], dtype: 'i32' }),
  };
}

function logps(model: GrinModel): T.Tensor {
  const { ids, targets } = batch();
  return sequenceLogProbs(model.forward(ids).logits_BSV, targets);
}

function dpo(dtype: ModelDType) {
  const { policy, reference } = models(dtype);
  const ref = T.noGrad(() => logps(reference));
  const pol = logps(policy);
  const out = dpoLoss(
    pol.slice([0, P]),
    pol.slice([P, 2 * P]),
    ref.slice([0, P]),
    ref.slice([P, 2 * P]),
    BETA,
  );
  return { policy, pol, ref, ...out };
}

/** sum over masked t >= 1 of log softmax(logits[t-1])[ids[t]], on the host in f64. */
function hostLogp(
  logits: ArrayLike<number>,
  row: number,
  V: number,
  ids: number[],
  learned: number[],
  shift = (_v: number) => 0,
): number {
  let total = 0;
  for (let t = 1; t < S; t++) {
    if (!learned[t]) continue;
    const base = (row * S + t - 1) * V;
    let max = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[base + v]! + shift(v));
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[base + v]! + shift(v) - max);
    total += logits[base + ids[t]!]! + shift(ids[t]!) - max - Math.log(sum);
  }
  return total;
}

describe('DPO log-probs and loss (f64)', () => {
  it("chosen log-probs, policy and reference, match a host log-softmax of transformers' logits", () => {
    const dump = T.loadTensors(join(MODEL_DIR, 'reference.safetensors'), { floatDType: 'f64' });
    const logits = dump.logits!.toArray() as Float64Array;
    const V = dump.logits!.shape[2]!;
    const { pol, ref } = dpo('f64');
    const ours = pol.toArray() as Float64Array;
    const ourRef = ref.toArray() as Float64Array;
    for (let p = 0; p < P; p++) {
      const expected = hostLogp(logits, p, V, chosen[p]!, chosenMask[p]!);
      const expectedRef = hostLogp(logits, p, V, chosen[p]!, chosenMask[p]!, biasShift);
      // the parity fixture itself agrees with transformers to ~1e-6 relative (float32 RoPE/softmax)
      expect(Math.abs(ours[p]! - expected)).toBeLessThan(1e-5 * Math.abs(expected));
      expect(Math.abs(ourRef[p]! - expectedRef)).toBeLessThan(1e-5 * Math.abs(expectedRef));
    }
  });

  it('the loss and rewards are the closed form of the log-probs', () => {
    const { pol, ref, loss, chosenRewards_P, rejectedRewards_P } = dpo('f64');
    const x = pol.toArray() as Float64Array;
    const r = ref.toArray() as Float64Array;
    let expected = 0;
    for (let p = 0; p < P; p++) {
      const c = BETA * (x[p]! - r[p]!);
      const j = BETA * (x[P + p]! - r[P + p]!);
      expect(chosenRewards_P.toArray()[p]).toBeCloseTo(c, 14);
      expect(rejectedRewards_P.toArray()[p]).toBeCloseTo(j, 14);
      expected += Math.log1p(Math.exp(-(c - j))) / P;
    }
    expect(Math.abs(loss.item() - expected)).toBeLessThan(1e-14);
    expect(Math.abs(loss.item() - Math.LN2)).toBeGreaterThan(1e-3); // the reference differs from the policy
  });

  it('gradients of the loss match central finite differences', () => {
    const { policy, loss } = dpo('f64');
    loss.backward();
    const lossAt = () => {
      const { reference } = models('f64');
      const ref = T.noGrad(() => logps(reference));
      const pol = T.noGrad(() => logps(policy));
      return dpoLoss(
        pol.slice([0, P]),
        pol.slice([P, 2 * P]),
        ref.slice([0, P]),
        ref.slice([P, 2 * P]),
        BETA,
      ).loss.item();
    };
    const h = 1e-5;
    let checked = 0;
    for (const name of [
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.1.block_sparse_moe.gate.weight',
      'model.layers.0.block_sparse_moe.experts.1.w2.weight',
      'lm_head.bias',
    ]) {
      const param = policy.params.get(name)!;
      const grad = param.grad!.toArray() as Float64Array;
      const values = Float64Array.from(param.toArray() as Float64Array);
      // the entries with the largest gradients: finite differences of them are well above rounding
      const entries = Array.from(grad.keys())
        .sort((i, j) => Math.abs(grad[j]!) - Math.abs(grad[i]!))
        .slice(0, 3);
      for (const i of entries) {
        const at = (delta: number) => {
          const moved = Float64Array.from(values);
          moved[i]! += delta;
          T.noGrad(() => T.copyInPlace(param, T.tensor(moved, { shape: [...param.shape], dtype: 'f64' })));
          return lossAt();
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        at(0);
        expect(Math.abs(numeric - grad[i]!), `${name}[${i}]`).toBeLessThan(1e-6 + 1e-4 * Math.abs(grad[i]!));
        checked++;
      }
    }
    expect(checked).toBe(15);
  });
});

describe('DPO against an independent NumPy computation (tools/reference/dpo_numpy.py)', () => {
  // float64 NumPy: the PhiMoE forward written out in Python with transformers' own RoPE tables, the
  // same pairs and reference, gradients of 15 entries by central differences (h = 1e-6)
  const numpy = JSON.parse(readFileSync(NUMPY, 'utf8')) as {
    policy_chosen_logps: number[];
    policy_rejected_logps: number[];
    reference_chosen_logps: number[];
    reference_rejected_logps: number[];
    loss: number;
    grad_by_central_differences: Record<string, Record<string, number>>;
  };

  it('log-probs of chosen and rejected, the loss and 15 gradient entries match (f64)', () => {
    const { policy, pol, ref, loss } = dpo('f64');
    loss.backward();
    const close = (ours: ArrayLike<number>, expected: number[], label: string) =>
      expected.forEach((e, i) =>
        expect(Math.abs(ours[i]! - e), `${label}[${i}]`).toBeLessThan(1e-5 * Math.abs(e)),
      );
    const x = pol.toArray() as Float64Array;
    const r = ref.toArray() as Float64Array;
    close(x.subarray(0, P), numpy.policy_chosen_logps, 'policy chosen');
    close(x.subarray(P), numpy.policy_rejected_logps, 'policy rejected');
    close(r.subarray(0, P), numpy.reference_chosen_logps, 'reference chosen');
    close(r.subarray(P), numpy.reference_rejected_logps, 'reference rejected');
    expect(Math.abs(loss.item() - numpy.loss)).toBeLessThan(1e-5 * numpy.loss);
    let checked = 0;
    for (const [name, entries] of Object.entries(numpy.grad_by_central_differences)) {
      const grad = policy.params.get(name)!.grad!.toArray() as Float64Array;
      for (const [index, expected] of Object.entries(entries)) {
        expect(Math.abs(grad[Number(index)]! - expected), `${name}[${index}]`).toBeLessThan(
          1e-6 + 1e-4 * Math.abs(expected),
        );
        checked++;
      }
    }
    expect(checked).toBe(15);
  });
});

describe.runIf(existsSync(DUMP))('DPO against the PyTorch dump (tools/reference/dpo_dump.py)', () => {
  const TOLERANCE: Record<ModelDType, number> = { f64: 1e-5, f32: 1e-4 };
  it.each(['f64', 'f32'] as const)('log-probs, rewards, loss and gradients in %s', (dtype) => {
    const reference = T.loadTensors(DUMP, { floatDType: 'f64' });
    const same = (name: string, rowsOf: number[][]) =>
      expect(Array.from(reference[name]!.toArray() as ArrayLike<number | bigint>, Number)).toEqual(
        rowsOf.flat(),
      );
    same('chosen_ids', chosen);
    same('rejected_ids', rejected);
    same('chosen_mask', chosenMask);
    same('rejected_mask', rejectedMask);
    const { policy, pol, ref, loss, chosenRewards_P, rejectedRewards_P } = dpo(dtype);
    loss.backward();
    const tol = TOLERANCE[dtype];
    let worst = { name: '', diff: 0 };
    const close = (ours: T.Tensor, name: string) => {
      const expected = reference[name]!;
      const want = expected.toArray() as Float64Array;
      const got = T.cast(ours, 'f64').toArray() as Float64Array;
      const scale = Math.max(...Array.from(want, Math.abs));
      const diff = Math.max(...Array.from(want, (w, i) => Math.abs(got[i]! - w))) / scale;
      if (diff >= worst.diff) worst = { name, diff };
      expectAllClose(T.cast(ours, 'f64'), expected, { rtol: tol, atol: tol * scale }, name);
    };
    close(pol.slice([0, P]), 'policy_chosen_logps');
    close(pol.slice([P, 2 * P]), 'policy_rejected_logps');
    close(ref.slice([0, P]), 'reference_chosen_logps');
    close(ref.slice([P, 2 * P]), 'reference_rejected_logps');
    close(chosenRewards_P, 'chosen_rewards');
    close(rejectedRewards_P, 'rejected_rewards');
    close(loss.reshape([1]), 'loss');
    const grads = Object.keys(reference).filter((k) => k.startsWith('grad.'));
    expect(grads.length).toBeGreaterThanOrEqual(5);
    for (const key of grads) close(policy.params.get(key.slice(5))!.grad!, key);
    console.log(
      `DPO vs PyTorch (${dtype}): largest difference ${worst.diff.toExponential(2)} of its tensor's scale (${worst.name}), ${grads.length} gradients checked`,
    );
  });
});
