// Baseline routers for comparison with SparseMixer-v2: GShard/Mixtral top-2 (softmax, top-k,
// renormalise; the gradient flows through the gate values only) and Switch top-1 (weight p_D,
// not renormalised).
// Test: cd packages/router-sparsemixer && npx vitest run src/baselines
import { div, gather, softmax, sum, type Tensor, tidy, topk } from '@grin-moe/tensor';
import { checkLogits, type RouteOptions, type Router, type RouterOutput, registerRouter } from './router.js';

export const gshardTop2: Router = {
  name: 'gshard-top2',
  defaultTopK: 2,
  description: 'Mixtral form: softmax, top-k, renormalised gate values (gradient through the gates)',
  route(logits_TE: Tensor, options: RouteOptions): RouterOutput {
    const topK = options.topK ?? 2;
    checkLogits('gshard-top2', logits_TE, topK);
    return tidy(() => {
      const probs_TE = softmax(logits_TE, -1);
      const { values, indices } = topk(probs_TE, topK, -1);
      return { experts_TK: indices, weights_TK: div(values, sum(values, -1, true)), probs_TE };
    });
  },
};

export const switchTop1: Router = {
  name: 'switch-top1',
  defaultTopK: 1,
  description: 'Switch Transformer: top-1 expert weighted by its softmax probability',
  route(logits_TE: Tensor, options: RouteOptions): RouterOutput {
    const topK = options.topK ?? 1;
    checkLogits('switch-top1', logits_TE, topK);
    return tidy(() => {
      const probs_TE = softmax(logits_TE, -1);
      const { indices } = topk(probs_TE, topK, -1);
      return { experts_TK: indices, weights_TK: gather(probs_TE, -1, indices), probs_TE };
    });
  },
};

registerRouter(gshardTop2);
registerRouter(switchTop1);
