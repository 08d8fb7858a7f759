// The Router interface and its registry. A router maps router logits [T,E] to K expert ids per
// token, their autograd-connected weights, and the full softmax for the load-balancing loss.
// A research fork adds a router by calling registerRouter once (see README.md).
// Test: cd packages/router-sparsemixer && npx vitest run src
import type { Generator, Tensor } from '@grin-moe/tensor';

/** Recorded random draws, so a run replays exactly (DESIGN.md's router reference format). */
export interface RouterDraws {
  /** Exp(1) draws per slot, each [T,E]. */
  exponential: Tensor[];
  /** U(0,1) draws per slot, each [T,1]. */
  uniform: Tensor[];
}

export interface RouteOptions {
  training: boolean;
  /** Picks per token (default: the router's own, 2 for top-2 routers). */
  topK?: number;
  /** Relative band of the SparseMixer jitter mask (config router_jitter_noise). */
  jitterEps?: number;
  /** Random stream for training-time sampling (default: the tensor package's default generator). */
  generator?: Generator;
  /** Injected draws instead of the generator (replay of a PyTorch dump). */
  draws?: RouterDraws;
}

export interface RouterOutput {
  /** Expert ids [T,K], i32. */
  experts_TK: Tensor;
  /** Routing weights [T,K], connected to the logits through the router's gradient. */
  weights_TK: Tensor;
  /** softmax(logits) [T,E], unmasked, carrying the gradient of the balance loss. */
  probs_TE: Tensor;
}

export interface Router {
  readonly name: string;
  readonly defaultTopK: number;
  /** One line for --help listings. */
  readonly description: string;
  route(logits_TE: Tensor, options: RouteOptions): RouterOutput;
}

const routers = new Map<string, Router>();

export function registerRouter(router: Router): void {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(router.name)) {
    throw new Error(
      `registerRouter: name '${router.name}' must be lower-case letters, digits, '.', '_' or '-'`,
    );
  }
  routers.set(router.name, router);
}

export function getRouter(name: string): Router {
  const router = routers.get(name);
  if (!router) throw new Error(`unknown router '${name}'; valid routers: ${routerNames().join(', ')}`);
  return router;
}

export function routerNames(): string[] {
  return [...routers.keys()];
}

/** Validates the common inputs of route(). */
export function checkLogits(name: string, logits_TE: Tensor, topK: number): void {
  if (logits_TE.rank !== 2)
    throw new RangeError(`router ${name}: logits must be [T,E], got ${logits_TE.describe()}`);
  const E = logits_TE.shape[1]!;
  if (!Number.isInteger(topK) || topK < 1 || topK > E) {
    throw new RangeError(
      `router ${name}: top-k ${topK} must be an integer in 1..${E} (the number of experts)`,
    );
  }
}
