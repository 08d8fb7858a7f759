// The post-training objectives. SFT: mean next-token cross-entropy over assistant tokens only.
// DPO (Rafailov et al.): loss = -mean log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), where
// pi_* / ref_* are the summed log-probabilities of the chosen / rejected completion (prompt masked)
// under the policy / the frozen reference; rewards beta * (pi - ref), as TRL's sigmoid loss logs them.
// Shape legend: B rows, S positions, V vocab, P pairs.
// Test: cd apps/trainer && npx vitest run src/post/losses (finite differences; the PyTorch dump)
import * as T from '@grin-moe/tensor';

const IGNORE = -100;

/**
 * Next-token targets [B,S]: targets[b][t] = ids[b][t+1] where token t+1 is learned, else ignored.
 * `learned` marks the tokens the loss covers (assistant tokens), in the rows' layout.
 */
export function maskedTargets(
  ids: Int32Array,
  learned: Uint8Array,
  rows: number,
  length: number,
): Int32Array {
  const targets = new Int32Array(rows * length).fill(IGNORE);
  for (let b = 0; b < rows; b++)
    for (let t = 0; t + 1 < length; t++) {
      const next = b * length + t + 1;
      if (learned[next]) targets[next - 1] = ids[next]!;
    }
  return targets;
}

export function targetsTensor(targets: Int32Array, rows: number, length: number, device: string): T.Tensor {
  return T.tensor(targets, { shape: [rows, length], dtype: 'i32', device });
}

/** Mean cross-entropy over the targets that are not ignored (the SFT loss); f32 for bf16 logits. */
export function assistantLoss(logits_BSV: T.Tensor, targets_BS: T.Tensor): T.Tensor {
  return T.tidy(() => {
    const logits = logits_BSV.dtype === 'bf16' ? T.cast(logits_BSV, 'f32') : logits_BSV;
    return T.crossEntropy(logits, targets_BS, { ignoreIndex: IGNORE });
  });
}

/** Summed log-probability of each row's targets [B] (ignored positions count 0). */
export function sequenceLogProbs(logits_BSV: T.Tensor, targets_BS: T.Tensor): T.Tensor {
  return T.tidy(() => {
    const logits = logits_BSV.dtype === 'bf16' ? T.cast(logits_BSV, 'f32') : logits_BSV;
    return T.neg(T.sum(T.crossEntropy(logits, targets_BS, { ignoreIndex: IGNORE, reduction: 'none' }), 1));
  });
}

/** log sigmoid(z) = -(relu(-z) + log(1 + exp(-|z|))), finite for any z. */
export function logSigmoid(z: T.Tensor): T.Tensor {
  return T.tidy(() => T.neg(T.add(T.relu(T.neg(z)), T.log(T.add(T.exp(T.neg(T.abs(z))), 1)))));
}

export interface DpoOutput {
  loss: T.Tensor;
  /** beta * (pi - ref) per pair, without a graph. */
  chosenRewards_P: T.Tensor;
  rejectedRewards_P: T.Tensor;
}

export function dpoLoss(
  policyChosen_P: T.Tensor,
  policyRejected_P: T.Tensor,
  referenceChosen_P: T.Tensor,
  referenceRejected_P: T.Tensor,
  beta: number,
): DpoOutput {
  return T.tidy(() => {
    const chosen = T.sub(policyChosen_P, referenceChosen_P);
    const rejected = T.sub(policyRejected_P, referenceRejected_P);
    const loss = T.neg(T.mean(logSigmoid(T.mul(T.sub(chosen, rejected), beta))));
    return {
      loss,
      chosenRewards_P: T.mul(chosen.detach(), beta),
      rejectedRewards_P: T.mul(rejected.detach(), beta),
    };
  });
}

/** Host summaries of a batch's rewards: means, margin and accuracy (chosen reward > rejected). */
export function rewardStats(chosen: ArrayLike<number>, rejected: ArrayLike<number>) {
  let c = 0;
  let r = 0;
  let correct = 0;
  for (let i = 0; i < chosen.length; i++) {
    c += chosen[i]!;
    r += rejected[i]!;
    if (chosen[i]! > rejected[i]!) correct++;
  }
  const n = chosen.length;
  return { chosen: c / n, rejected: r / n, margin: (c - r) / n, accuracy: correct / n };
}
