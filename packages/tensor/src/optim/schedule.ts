// Learning-rate schedules as pure functions of the step (1-based, the step about to run), so a
// resumed run recomputes the same rate from the saved step alone.
// Test: cd packages/tensor && npx vitest run src/optim
export type Schedule = (step: number) => number;

export interface WarmupCosineOptions {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  /** Final rate at totalSteps (default 10% of peak). */
  min?: number;
}

/** Linear warmup from peak/warmupSteps to peak, then half-cosine decay to min at totalSteps. */
export function warmupCosine({
  peak,
  warmupSteps,
  totalSteps,
  min = peak * 0.1,
}: WarmupCosineOptions): Schedule {
  check(peak, warmupSteps, totalSteps);
  return (step) => {
    if (step <= warmupSteps) return (peak * step) / Math.max(1, warmupSteps);
    if (step >= totalSteps) return min;
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
  };
}

/** Linear warmup to peak, then linear decay to min at totalSteps. */
export function warmupLinear({ peak, warmupSteps, totalSteps, min = 0 }: WarmupCosineOptions): Schedule {
  check(peak, warmupSteps, totalSteps);
  return (step) => {
    if (step <= warmupSteps) return (peak * step) / Math.max(1, warmupSteps);
    if (step >= totalSteps) return min;
    return peak + ((min - peak) * (step - warmupSteps)) / Math.max(1, totalSteps - warmupSteps);
  };
}

export const constant =
  (lr: number): Schedule =>
  () =>
    lr;

function check(peak: number, warmup: number, total: number): void {
  if (!(peak > 0)) throw new RangeError(`schedule: peak learning rate must be > 0, got ${peak}`);
  if (!Number.isInteger(warmup) || warmup < 0)
    throw new RangeError(`schedule: warmupSteps must be an integer >= 0, got ${warmup}`);
  if (!Number.isInteger(total) || total < warmup)
    throw new RangeError(`schedule: totalSteps (${total}) must be an integer >= warmupSteps (${warmup})`);
}
