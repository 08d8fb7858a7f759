// Reverse-mode autograd: walks the graph from a root in reverse topological order, calls each
// node's rule and accumulates gradients into leaves' .grad. Every temporary of the pass is
// disposed at its end; saved tensors are released unless retainGraph is set.
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
import { hooks } from '../core/hooks.js';
import { Scope } from '../core/memory.js';
import { formatShape, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { noGrad } from './mode.js';
import type { Node } from './node.js';

export function backward(root: Tensor, gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
  root.assertAlive('backward');
  if (!root.requiresGrad)
    throw new Error(`backward: ${root.describe()} does not require grad (no parameter reached it)`);
  if (!gradient && root.size !== 1) {
    throw new Error(`backward: ${root.describe()} is not a scalar; pass the upstream gradient explicitly`);
  }
  if (gradient && !shapesEqual(gradient.shape, root.shape)) {
    throw new RangeError(
      `backward: gradient ${formatShape(gradient.shape)} does not match ${root.describe()}`,
    );
  }
  noGrad(() => {
    const scope = new Scope();
    const leaves = new Set<Tensor>();
    try {
      const seed = gradient ? gradient.alias() : hooks.onesLike(root);
      if (!root.gradNode) {
        accumulateLeaf(root, seed, leaves);
        return;
      }
      const order = topologicalOrder(root.gradNode);
      const pending = new Map<Node, Array<Tensor | null>>();
      pending.set(
        root.gradNode,
        root.gradNode.outputShapes.map((_, i) => (i === root.outputIndex ? seed : null)),
      );
      for (const node of order) {
        const grads = pending.get(node);
        pending.delete(node);
        if (!grads || grads.every((g) => g === null)) continue;
        if (node.released) {
          throw new Error(
            `backward: the graph through '${node.op}' was already freed; pass retainGraph: true to the first backward`,
          );
        }
        const inputGrads = node.rule.backward(node.ctx, grads);
        node.edges.forEach((edge, i) => {
          const g = inputGrads[i];
          if (!edge || !g) return;
          const want = node.ctx.inputShapes[i]!;
          if (!shapesEqual(g.shape, want)) {
            throw new Error(
              `autograd: rule for '${node.op}' returned a gradient ${formatShape(g.shape)} for input ${i} of shape ${formatShape(want)}`,
            );
          }
          if (edge.kind === 'leaf') return accumulateLeaf(edge.tensor, g, leaves);
          const slots = pending.get(edge.node) ?? edge.node.outputShapes.map(() => null);
          const prev = slots[edge.outputIndex];
          slots[edge.outputIndex] = prev ? hooks.add(prev, g) : g;
          pending.set(edge.node, slots);
        });
        if (!options.retainGraph) node.release();
      }
    } finally {
      // Leaf gradients leave the pass as exclusive, contiguous tensors so that in-place
      // optimizer updates or clipping of one never touch another.
      const owned = [...leaves].map((leaf) => [leaf, leaf.grad!.alias({ track: false })] as const);
      scope.dispose();
      for (const [leaf, g] of owned) {
        leaf.grad = g;
        if (g.storage.refs > 1 || !g.isContiguous()) {
          const copy = hooks.clone(g);
          leaf.grad = copy.alias({ track: false });
          copy.dispose();
          g.dispose();
        }
      }
    }
  });
}

function accumulateLeaf(leaf: Tensor, g: Tensor, leaves: Set<Tensor>): void {
  if (leaf.disposed) return;
  const prev = leaf.grad;
  if (prev && !leaves.has(leaf)) {
    // Gradient accumulation across backward calls: the old grad is owned by the leaf.
    leaf.grad = hooks.add(prev, g);
    prev.dispose();
  } else {
    leaf.grad = prev ? hooks.add(prev, g) : g;
  }
  leaves.add(leaf);
}

/** Nodes reachable from root, each after every node that consumes its outputs. */
function topologicalOrder(root: Node): Node[] {
  const visited = new Set<Node>();
  const post: Node[] = [];
  const stack: Array<[Node, number]> = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.edges.length) {
      top[1]++;
      const edge = node.edges[i];
      if (edge?.kind === 'node' && !visited.has(edge.node)) {
        visited.add(edge.node);
        stack.push([edge.node, 0]);
      }
    } else {
      stack.pop();
      post.push(node);
    }
  }
  return post.reverse();
}
