// Optimizers over leaf tensors: AdamW (decoupled weight decay, bias correction; fused kernel;
// bf16 parameters get f32 moments and an f32 master copy) and SGD with momentum. State lives on
// the parameters' device; stateDict() feeds checkpoints. Test: npx vitest run src/optim

import { noGrad } from '../autograd/mode.js';
import { tidy } from '../core/memory.js';
import { formatShape, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { tensor, zeros, zerosLike } from '../ops/creation.js';
import { runKernel } from '../ops/dispatch.js';
import { add, mul } from '../ops/elementwise.js';
import { addInPlace, cast, copyInPlace } from '../ops/layout.js';
import { momentSalt } from './rounding.js';

export interface OptimizerState {
  step: number;
  /** Per-parameter state tensors, keyed `${slot}.${index}` (e.g. "exp_avg.3"). */
  tensors: Record<string, Tensor>;
}

export abstract class Optimizer {
  step = 0;
  constructor(readonly params: Tensor[]) {
    params.forEach((p, i) => {
      if (!p.requiresGrad)
        throw new Error(`optimizer: parameter ${i} (${p.describe()}) does not require grad`);
    });
  }
  /** The learning rate used by the next step (schedules set it). */
  abstract lr: number;
  abstract update(): void;
  /** State tensors per slot, one entry per parameter; null where a parameter has none in that slot. */
  protected abstract slots(): Record<string, Array<Tensor | null>>;

  /** The gradient multiplier of the step being taken (null: none). */
  protected gradScale: Tensor | null = null;
  /** Called after each parameter's update is enqueued, with its index (the step's option). */
  protected afterParam: ((index: number) => void) | null = null;

  /**
   * One update from the accumulated .grad of each parameter; parameters without grad are skipped.
   * `gradScale` (one f32 value on the parameters' device, e.g. gradNormScale's clip coefficient;
   * f64 with f64 gradients on the CPU)
   * multiplies every gradient as the update reads it, so clipping costs no pass over the gradients.
   * `afterParam(i)` runs once each parameter's update is enqueued, in parameter order (a device
   * overlapping the step with later work marks each parameter ready there: kernels-cuda's
   * `onSideStream`).
   */
  stepOnce(options: { gradScale?: Tensor; afterParam?: (index: number) => void } = {}): void {
    const scale = options.gradScale ?? null;
    if (scale && (scale.size !== 1 || (scale.dtype !== 'f32' && scale.dtype !== 'f64')))
      throw new TypeError(
        `optimizer step: gradScale must be one f32 (or f64) value, got ${scale.describe()}`,
      );
    this.step++;
    this.gradScale = scale;
    this.afterParam = options.afterParam ?? null;
    try {
      noGrad(() => tidy(() => this.update()));
    } finally {
      this.gradScale = null;
      this.afterParam = null;
    }
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  stateDict(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    for (const [slot, list] of Object.entries(this.slots()))
      list.forEach((t, i) => {
        if (t) tensors[`${slot}.${i}`] = t;
      });
    return { step: this.step, tensors };
  }

  loadStateDict(state: OptimizerState): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new Error(`optimizer state: step must be a non-negative integer, got ${state.step}`);
    noGrad(() => {
      for (const [slot, list] of Object.entries(this.slots())) {
        list.forEach((t, i) => {
          if (!t) return;
          const src = state.tensors[`${slot}.${i}`] ?? this.missingState(slot, i);
          if (!src) throw new Error(`optimizer state: missing tensor '${slot}.${i}'`);
          if (!shapesEqual(src.shape, t.shape)) {
            throw new Error(
              `optimizer state: '${slot}.${i}' has shape ${formatShape(src.shape)}, expected ${formatShape(t.shape)}`,
            );
          }
          tidy(() => copyInPlace(t, src.dtype === t.dtype && src.device === t.device ? src : castTo(src, t)));
        });
      }
    });
    this.step = state.step;
  }

  /** A stand-in for a state tensor the saved state lacks (null: the state is incomplete). */
  protected missingState(_slot: string, _index: number): Tensor | null {
    return null;
  }
}

/** src with like's dtype and device (a checkpoint read on the CPU, resumed on a GPU). */
function castTo(src: Tensor, like: Tensor): Tensor {
  const moved =
    src.device === like.device
      ? src
      : tensor(src.toArray(), { shape: [...src.shape], dtype: src.dtype, device: like.device });
  return moved.dtype === like.dtype
    ? moved
    : runKernel('cast', like.device, [moved], { dtype: like.dtype })[0]!;
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /**
   * The moments' dtype for bf16 parameters: 'f32' (default) or 'bf16', which stores them by
   * stochastic rounding (unbiased; optim/rounding.ts) and moves 20 bytes an element a step instead
   * of 28. Parameters of other dtypes keep moments of their own dtype.
   */
  moments?: 'f32' | 'bf16';
}

/**
 * AdamW as torch.optim.AdamW. A bf16 parameter is trained in mixed precision: its moments are f32
 * (or bf16 with `moments: 'bf16'`) and the update goes to an f32 master copy (state slot `master`),
 * from which the bf16 parameter is re-rounded (round-to-nearest-even) after every step, so small
 * updates accumulate instead of vanishing below bf16's resolution. Other parameters keep moments
 * of their own dtype.
 */
export class AdamW extends Optimizer {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly moments: 'f32' | 'bf16';
  private readonly expAvg: Tensor[];
  private readonly expAvgSq: Tensor[];
  private readonly master: Array<Tensor | null>;

  constructor(
    params: Tensor[],
    { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01, moments = 'f32' }: AdamWOptions = {},
  ) {
    super(params);
    if (moments !== 'f32' && moments !== 'bf16')
      throw new TypeError(`AdamW: moments must be 'f32' or 'bf16', got ${JSON.stringify(moments)}`);
    this.lr = lr;
    [this.beta1, this.beta2] = betas;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.moments = moments;
    const momentsOf = (p: Tensor) =>
      untracked(
        p.dtype === 'bf16' ? zeros([...p.shape], { dtype: moments, device: p.device }) : zerosLike(p),
      );
    this.expAvg = params.map(momentsOf);
    this.expAvgSq = params.map(momentsOf);
    this.master = params.map((p) => (p.dtype === 'bf16' ? masterOf(p) : null));
  }

  protected slots() {
    return { exp_avg: this.expAvg, exp_avg_sq: this.expAvgSq, master: this.master };
  }

  /** A state saved without master weights (an f32 run resumed in bf16): start from the parameter. */
  protected override missingState(slot: string, index: number): Tensor | null {
    return slot === 'master' ? cast(this.params[index]!.detach(), 'f32') : null;
  }

  update(): void {
    const attrs = {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      step: this.step,
    };
    const scale = this.gradScale ? [this.gradScale] : [];
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const master = this.master[i];
      const inputs = [p, p.grad, ...(master ? [master] : []), this.expAvg[i]!, this.expAvgSq[i]!, ...scale];
      requireAdamWInputs(i, inputs, master !== null);
      if (master)
        runKernel('adamw_step_mixed', p.device, inputs, { ...attrs, salt: momentSalt(this.step, i) });
      else runKernel('adamw_step', p.device, inputs, attrs);
      this.afterParam?.(i);
    });
  }
}

/**
 * The checks every backend's AdamW kernel relies on, made once here: one device, the gradient and
 * every state tensor the parameter's size, and for the mixed step a bf16 parameter with f32 master
 * weights and moments both f32 or both bf16.
 */
function requireAdamWInputs(index: number, inputs: Tensor[], mixed: boolean): void {
  const [param, ...rest] = inputs as [Tensor, ...Tensor[]];
  const where = `AdamW, parameter ${index} (${param.describe()})`;
  for (const t of rest)
    if (t.device !== param.device)
      throw new Error(`${where}: ${t.describe()} is on ${t.device}, the parameter on ${param.device}`);
  const state = rest.slice(0, mixed ? 4 : 3); // grad, (master,) exp_avg, exp_avg_sq
  for (const t of state)
    if (t.size !== param.size) throw new RangeError(`${where}: ${t.describe()} does not match its size`);
  if (mixed) {
    if (param.dtype !== 'bf16') throw new TypeError(`${where}: the mixed step needs a bf16 parameter`);
    const [master, m, v] = state.slice(1) as [Tensor, Tensor, Tensor];
    if (master.dtype !== 'f32')
      throw new TypeError(`${where}: master weights must be f32, got ${master.describe()}`);
    if ((m.dtype !== 'f32' && m.dtype !== 'bf16') || v.dtype !== m.dtype)
      throw new TypeError(
        `${where}: moments must be both f32 or both bf16, got ${m.describe()} and ${v.describe()}`,
      );
  }
}

/** An f32 copy of a bf16 parameter with its own storage, outside autograd and any scope. */
function masterOf(p: Tensor): Tensor {
  return noGrad(() => untracked(cast(p.detach(), 'f32')));
}

/**
 * t as a handle outside any scope, t itself released: its storage then lives exactly as long as
 * the handle, so disposing the optimizer's state frees it at once (not when t is collected).
 */
function untracked(t: Tensor): Tensor {
  const kept = t.alias({ track: false });
  t.dispose();
  return kept;
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  private readonly buffers: Tensor[];

  constructor(params: Tensor[], { lr = 1e-2, momentum = 0, weightDecay = 0 }: SGDOptions = {}) {
    super(params);
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.buffers = momentum ? params.map((p) => zerosLike(p).alias({ track: false })) : [];
  }

  protected slots(): Record<string, Tensor[]> {
    return this.momentum ? { momentum_buffer: this.buffers } : {};
  }

  update(): void {
    this.params.forEach((p, i) => {
      if (!p.grad) return;
      const grad = this.gradScale ? mul(p.grad, this.gradScale) : p.grad;
      let g = this.weightDecay ? add(grad, mul(p, this.weightDecay)) : grad;
      if (this.momentum) {
        const buf = this.buffers[i]!;
        // torch.optim.SGD: buf = momentum * buf + g (the first step takes g as is)
        const next = this.step === 1 ? g : add(mul(buf, this.momentum), g);
        copyInPlace(buf, next);
        g = buf;
      }
      addInPlace(p, g, -this.lr);
      this.afterParam?.(i);
    });
  }
}
