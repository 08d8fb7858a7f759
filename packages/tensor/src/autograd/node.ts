// A node of the autograd graph: one recorded op application, its saved tensors and its edges to
// the nodes (or leaves) that produced its inputs.
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
import type { DType } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';

export interface BackwardContext<A = unknown> {
  attrs: A;
  /** Saved inputs (undefined where the rule did not ask to save one). */
  inputs: Array<Tensor | undefined>;
  /** Saved outputs, likewise. */
  outputs: Array<Tensor | undefined>;
  inputShapes: number[][];
  inputDtypes: DType[];
  /** Whether input i needs a gradient; a rule may skip work for the others. */
  needsInputGrad: boolean[];
  /** Tensors a custom function saved by hand; released with the node. */
  extra?: Tensor[];
}

export interface GradRule<A = unknown> {
  saveInputs?: readonly number[] | 'all';
  saveOutputs?: readonly number[] | 'all';
  /** Outputs that carry no gradient (indices, statistics). */
  nondifferentiableOutputs?: readonly number[];
  /** Gradients for each input, given the gradients of each output (null where none flowed). */
  backward(ctx: BackwardContext<A>, grads: Array<Tensor | null>): Array<Tensor | null | undefined>;
}

export type Edge =
  | { kind: 'node'; node: Node; outputIndex: number }
  | { kind: 'leaf'; tensor: Tensor }
  | null;

let nextId = 0;

export class Node {
  readonly id = nextId++;
  released = false;
  constructor(
    readonly op: string,
    readonly rule: GradRule<unknown>,
    readonly ctx: BackwardContext<unknown>,
    readonly edges: Edge[],
    readonly outputShapes: number[][],
  ) {}

  /** Drops the saved tensors; the node can no longer run backward. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.ctx.inputs) t?.dispose();
    for (const t of this.ctx.outputs) t?.dispose();
    for (const t of this.ctx.extra ?? []) t.dispose();
  }
}
