// Tensor parallelism for GrinModel (Megatron-LM's column/row splits; GRIN uses TP instead of expert
// parallelism). With --tp N, each of N ranks holds:
//   - attention: its Hkv/N key/value heads and the H/N query heads that read them (rows of q/k/v
//     and their biases, column-parallel) and the matching columns of o_proj (row-parallel);
//   - every expert: rows I/N of w1 and w3 and the matching columns of w2 (row-parallel), so every
//     expert lives on every rank (no expert parallelism, no token exchange);
//   - replicated: embedding, both LayerNorms of each layer, the router gate, o_proj's bias, the
//     final LayerNorm and lm_head (whole vocabulary; vocab-parallel would save memory, not done).
// The router and its picks are replicated: every rank computes the same gate logits from the same
// residual stream and draws the same jitter and SparseMixer samples from a Generator in the same
// state (same seed, same counter), so every rank routes every token the same way.
//
// The model's forward and autograd are synchronous, the collectives asynchronous. So each decoder
// layer runs as two segments, attention and MoE (tensor-parallel-segments.ts): a segment takes the
// replicated residual stream as a fresh leaf, applies its LayerNorm and this rank's heads or
// expert slices, and returns a PARTIAL sum of the block output; `await allReduce` between the
// segments completes it and the residual add happens outside (tensor-parallel-forward.ts). The
// backward runs the segments in reverse like pipeline stages (tensor-parallel-step.ts): each
// segment's backward, seeded with the replicated upstream gradient, gives this rank's part of the
// gradient at its input; their all-reduce plus the residual path is the next upstream gradient.
// Replicated parameters used inside segments (LayerNorms, gate, o_proj bias) get per-rank parts of
// their gradient, summed over the group once per step (finishTensorParallelGradients). The o_proj
// bias is added by rank 0 only and the load-balancing loss (the same on every rank) enters the
// backward on rank 0 only, so each is counted once in those sums. Clipping uses the global norm
// (split parameters' squares all-reduced, replicated ones counted once); AdamW is elementwise, so
// each rank steps its own shard and the result is the single-process update.
//
// Requires num_key_value_heads and intermediate_size to divide by N. Not supported under tp > 1:
// expert dropout (each rank would need its columns of the one [N, I] mask). Checkpoints: gather the
// full HF-named tensors (gatherTensorParallelModel) and save as usual; they load at any --tp.
//
// A trainer step per TP rank (group = the TP group, shard = shardForTensorParallel(model, tp, rank),
// AdamW over shard.params, every rank's generator in the same state):
//   for each micro-batch: await tensorParallelStep(group, shard, ids, { training: true, generator,
//                           balance: { alpha, mode, allReduce }, lossScale: 1 / gradAccum })
//   await finishTensorParallelGradients(group, shard)           (once, after the last micro-batch)
//   const norm = await clipTensorParallelGradients(group, shard, clip); optimizer.stepOnce()
// Evaluation: tensorParallelForward(group, shard, ids, { training: false, grad: false }).
// Checkpoint: gatherTensorParallelModel(group, shard) on every rank, saveModel on rank 0; the AdamW
// moments through tensor-parallel-optimizer.ts. `grin train --tp K` does all of this, with a DP
// average of the gradients in between for --dp N (loop-step-tensor-parallel.ts); under --pp M each
// pipeline stage runs its layers' segments this way (loop-step-pipeline-tensor.ts).
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel.test.ts
export {
  disposePass,
  type SegmentRecord,
  type TensorParallelForwardOptions,
  type TensorParallelPass,
  tensorParallelForward,
} from './tensor-parallel-forward.js';
export {
  clipTensorParallelGradients,
  finishTensorParallelGradients,
  gatherTensorParallel,
  gatherTensorParallelModel,
  tensorParallelGradNorm,
} from './tensor-parallel-gradients.js';
export {
  checkTensorParallel,
  gatherShards,
  isPartialGradient,
  localConfig,
  shardAxis,
  shardForTensorParallel,
  type TensorParallelShard,
} from './tensor-parallel-shard.js';
export {
  type TensorParallelStepOptions,
  type TensorParallelStepResult,
  tensorParallelStep,
} from './tensor-parallel-step.js';
