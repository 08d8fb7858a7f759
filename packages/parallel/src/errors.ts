// Errors of @grin-moe/parallel. RankFailure names the rank that failed (or vanished) and the cause,
// so every surviving rank reports the same root cause instead of a generic timeout.
// Test: cd packages/parallel && npx vitest run src/grpc-group.test.ts src/faults.test.ts

export class ParallelError extends Error {
  override name = 'ParallelError';
}

/** A rank failed or disappeared; every other rank of the group stops with this. */
export class RankFailure extends ParallelError {
  override name = 'RankFailure';
  constructor(
    readonly failedRank: number,
    readonly reason: string,
  ) {
    super(`rank ${failedRank} failed: ${reason}`);
  }
}
