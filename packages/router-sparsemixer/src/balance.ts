// The load-balancing loss (Switch form): alpha * E * sum_i f_i * P_i, with f_i = count_i / (T*K)
// over all K picks and P_i the mean over tokens of the full softmax. GRIN counts load globally:
// counts and T are all-reduced over the data-parallel group before f is formed, while P stays
// local because it carries the gradient. Counting happens in the forward (no sync); the
// all-reduce of every layer's counts happens once, after it. With gradient accumulation the counts
// of the whole accumulated batch (`balanceCounts` summed over micro-batches) can stand in for the
// micro-batch's own, so every micro-batch is balanced against the same f.
// Test: cd packages/router-sparsemixer && npx vitest run src/balance
import {
  add,
  arange,
  cast,
  concat,
  div,
  eq,
  full,
  mean,
  mul,
  noGrad,
  sum,
  type Tensor,
  tidy,
} from '@grin-moe/tensor';

export type BalanceMode = 'local' | 'global';

/** Per-layer routing statistics gathered in the forward pass. */
export interface BalanceStats {
  /** Picks per expert [E] (f32, no gradient). */
  counts_E: Tensor;
  /** Mean full softmax per expert [E] (autograd-connected). */
  meanProbs_E: Tensor;
  tokens: number;
  topK: number;
}

export function balanceStats(experts_TK: Tensor, probs_TE: Tensor): BalanceStats {
  const [T, E] = probs_TE.shape as [number, number];
  if (experts_TK.rank !== 2 || experts_TK.shape[0] !== T) {
    throw new RangeError(
      `balanceStats: experts ${experts_TK.describe()} do not match probs ${probs_TE.describe()}`,
    );
  }
  const counts_E = noGrad(() =>
    tidy(() => {
      const positions_11E = arange(E, { device: probs_TE.device }).reshape([1, 1, E]);
      const hits_TKE = eq(experts_TK.unsqueeze(2), positions_11E);
      return sum(cast(hits_TKE, probs_TE.dtype === 'f64' ? 'f64' : 'f32'), [0, 1]);
    }),
  );
  return { counts_E, meanProbs_E: mean(probs_TE, 0), tokens: T, topK: experts_TK.shape[1]! };
}

/** Sum over ranks, returning a new tensor that the caller then owns (the parallel package provides it). */
export type AllReduceSum = (t: Tensor) => Tensor | Promise<Tensor>;

export interface BalanceLossOptions {
  alpha: number;
  mode: BalanceMode;
  allReduce?: AllReduceSum;
  /**
   * Global mode only: the [L, E+1] table (`balanceCounts`) of the larger batch these statistics
   * belong to, already summed over it (its micro-batches and ranks). It replaces this batch's own
   * counts, and nothing is all-reduced.
   */
  counts_LF?: Tensor;
}

/** Every layer's counts and its picks (tokens x K) as one [L, E+1] table: what global mode sums. */
export function balanceCounts(stats: BalanceStats[]): Tensor {
  if (stats.length === 0) throw new Error('balanceCounts: no layers');
  const E = stats[0]!.counts_E.shape[0]!;
  const dtype = stats[0]!.counts_E.dtype;
  return noGrad(() =>
    concat(
      stats.map((s) =>
        concat([s.counts_E, full([1], s.tokens * s.topK, { dtype, device: s.counts_E.device })], 0).reshape([
          1,
          E + 1,
        ]),
      ),
      0,
    ),
  );
}

/**
 * The loss summed over layers (each layer balanced on its own; alpha is a per-layer weight, so a
 * balanced model gives alpha * L; transformers pools the layers instead, see README.md). In global mode every layer's counts and token count travel in one
 * all-reduce. Returns a 0-d tensor and the per-layer load fractions f [layers, E] actually used.
 */
export async function balanceLoss(
  stats: BalanceStats[],
  options: BalanceLossOptions,
): Promise<{ loss: Tensor; fractions_LE: Tensor }> {
  if (stats.length === 0) throw new Error('balanceLoss: no layers');
  if (!(options.alpha >= 0)) throw new RangeError(`balanceLoss: alpha must be >= 0, got ${options.alpha}`);
  const E = stats[0]!.counts_E.shape[0]!;
  if (options.counts_LF) {
    const expected = [stats.length, E + 1];
    if (options.mode !== 'global' || options.counts_LF.shape.join() !== expected.join())
      throw new Error(
        `balanceLoss: counts_LF must be a [${expected}] table (balanceCounts) in global mode, got ${options.counts_LF.describe()} in mode '${options.mode}'`,
      );
  }
  // Row l holds layer l's counts and its token count: [L, E+1].
  let table_LF = options.counts_LF ? options.counts_LF.alias() : balanceCounts(stats);
  if (options.mode === 'global' && !options.counts_LF) {
    if (!options.allReduce)
      throw new Error("balanceLoss: mode 'global' needs an allReduce (the data-parallel group's sum)");
    const local = table_LF;
    table_LF = await options.allReduce(local);
    if (table_LF !== local) local.dispose();
  } else if (options.mode !== 'local' && options.mode !== 'global') {
    throw new Error(`balanceLoss: unknown mode '${options.mode as string}'; valid modes: local, global`);
  }
  const result = tidy(() => {
    const fractions_LE = noGrad(() => div(table_LF.slice(null, [0, E]), table_LF.slice(null, [E, E + 1])));
    let loss: Tensor | null = null;
    stats.forEach((s, l) => {
      const term = sum(mul(fractions_LE.select(0, l), s.meanProbs_E));
      loss = loss ? add(loss, term) : term;
    });
    return { loss: mul(loss!, options.alpha * E), fractions_LE };
  });
  table_LF.dispose();
  return result;
}
