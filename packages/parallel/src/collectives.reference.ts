// Reference results for the collectives, computed with plain loops over every rank's input, and
// a table of cases shared by the local and the grpc group tests.
// Test: used by src/local-group.test.ts and src/grpc-group.test.ts
import { expect } from 'vitest';
import type { ProcessGroup, ReduceOp } from './group.js';

/** Deterministic, rank-dependent inputs with values that differ per element. */
export function input(rank: number, length: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin(rank * 131 + i * 0.37) * (rank + 1));
}

export function reduced(inputs: Float32Array[], op: ReduceOp): Float64Array {
  const out = new Float64Array(inputs[0]!.length);
  for (let i = 0; i < out.length; i++) {
    const values = inputs.map((x) => x[i]!);
    out[i] =
      op === 'max'
        ? Math.max(...values)
        : values.reduce((a, b) => a + b, 0) / (op === 'avg' ? inputs.length : 1);
  }
  return out;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++)
    if (Math.abs(actual[i]! - expected[i]!) > 1e-5 * (1 + Math.abs(expected[i]!)))
      throw new Error(`element ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

/** Runs every collective on every rank of `groups` and checks each against the reference. */
export async function checkCollectives(groups: ProcessGroup[], length: number): Promise<void> {
  const n = groups.length;
  const inputs = groups.map((_, r) => input(r, length));
  for (const op of ['sum', 'avg', 'max'] as const) {
    const bufs = inputs.map((x) => x.slice());
    await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, op)));
    const want = reduced(inputs, op);
    for (const b of bufs) close(b, want);
    // Every rank ends with the same bits.
    for (const b of bufs) expect(Buffer.from(b.buffer).equals(Buffer.from(bufs[0]!.buffer))).toBe(true);
  }
  // broadcast from the last rank
  const bcast = inputs.map((x) => x.slice());
  await Promise.all(groups.map((g, r) => g.broadcast(bcast[r]!, n - 1)));
  for (const b of bcast) close(b, inputs[n - 1]!);
  // all-gather: rank-major concatenation
  const gathered = groups.map(() => new Float32Array(length * n));
  await Promise.all(groups.map((g, r) => g.allGather(inputs[r]!, gathered[r]!)));
  const concat = new Float32Array(length * n);
  inputs.forEach((x, r) => concat.set(x, r * length));
  for (const b of gathered) close(b, concat);
  // reduce-scatter: each rank's block of the sum of everyone's [n*length] inputs
  const big = groups.map((_, r) => input(r + 7, length * n));
  const parts = groups.map(() => new Float32Array(length));
  await Promise.all(groups.map((g, r) => g.reduceScatter(big[r]!, parts[r]!, 'sum')));
  const total = reduced(big, 'sum');
  parts.forEach((p, r) => close(p, total.subarray(r * length, (r + 1) * length)));
  // send/recv around the ring, twice (order within a pair is kept)
  const received = groups.map(() => [new Float32Array(length), new Float32Array(length)]);
  await Promise.all(
    groups.map(async (g, r) => {
      const next = (r + 1) % n;
      const prev = (r - 1 + n) % n;
      if (n === 1) return;
      await Promise.all([
        g.send(inputs[r]!, next).then(() => g.send(input(r + 50, length), next)),
        g.recv(received[r]![0]!, prev).then(() => g.recv(received[r]![1]!, prev)),
      ]);
    }),
  );
  if (n > 1)
    received.forEach(([a, b], r) => {
      close(a!, inputs[(r - 1 + n) % n]!);
      close(b!, input(((r - 1 + n) % n) + 50, length));
    });
  await Promise.all(groups.map((g) => g.barrier()));
}
