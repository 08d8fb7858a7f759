// Records op applications into the autograd graph. Kernels, views and custom functions all come
// through recordNode, which saves what the rule asks for as extra (scope-independent) handles.
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
import type { Tensor } from '../core/tensor.js';
import { isGradEnabled } from './mode.js';
import { type Edge, type GradRule, Node } from './node.js';

let ruleTable: Record<string, GradRule<never> | 'nondifferentiable'> | null = null;

export function installRules(table: Record<string, GradRule<never> | 'nondifferentiable'>): void {
  ruleTable = table;
}

function ruleFor(op: string): GradRule<unknown> | 'nondifferentiable' {
  const rule = ruleTable?.[op];
  if (!rule) throw new Error(`autograd: no gradient rule for op '${op}'`);
  return rule as GradRule<unknown> | 'nondifferentiable';
}

export function needsGrad(inputs: readonly Tensor[]): boolean {
  return isGradEnabled() && inputs.some((t) => t.requiresGrad);
}

/** Attaches a node to `outputs` when grad mode is on and some input requires grad. */
export function recordNode(
  op: string,
  inputs: readonly Tensor[],
  outputs: readonly Tensor[],
  attrs: unknown,
  rule: GradRule<unknown> | 'nondifferentiable' = ruleFor(op),
  extra?: Tensor[],
): boolean {
  if (!needsGrad(inputs) || rule === 'nondifferentiable') return false;
  const pick = (spec: readonly number[] | 'all' | undefined, list: readonly Tensor[]) =>
    list.map((t, i) => (spec === 'all' || spec?.includes(i) ? t.alias({ track: false }) : undefined));
  const edges: Edge[] = inputs.map((t) => {
    if (!t.requiresGrad) return null;
    if (t.gradNode) return { kind: 'node', node: t.gradNode, outputIndex: t.outputIndex };
    return { kind: 'leaf', tensor: t };
  });
  const node = new Node(
    op,
    rule,
    {
      attrs,
      inputs: pick(rule.saveInputs, inputs),
      outputs: pick(rule.saveOutputs, outputs),
      inputShapes: inputs.map((t) => [...t.shape]),
      inputDtypes: inputs.map((t) => t.dtype),
      needsInputGrad: inputs.map((t) => t.requiresGrad),
      extra,
    },
    edges,
    outputs.map((t) => [...t.shape]),
  );
  outputs.forEach((t, i) => {
    if (rule.nondifferentiableOutputs?.includes(i)) return;
    t.requiresGrad = true;
    t.gradNode = node;
    t.outputIndex = i;
  });
  return true;
}

/** Views carry their own rule; returns the view for chaining. */
export function recordView(
  op: 'reshape' | 'permute' | 'expand' | 'slice',
  input: Tensor,
  view: Tensor,
  attrs: unknown,
): Tensor {
  recordNode(op, [input], [view], attrs);
  return view;
}
