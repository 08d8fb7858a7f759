// The grpc process group on loopback, all ranks in this process (each with its own Store client,
// data port and sockets): every collective against the reference for 2 and 3 ranks, messages
// larger than a chunk, sub-groups, tensors with their shapes, and the wrong-shape / wrong-token errors.
// Test: cd packages/parallel && npx vitest run src/grpc-group
import { tensor } from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { checkCollectives, input, reduced } from './collectives.reference.js';
import { initWorld } from './init.js';
import { allGatherTensor, allReduceTensor, reduceScatterTensor } from './tensors.js';
import { closeAll, freePort, grpcWorlds, testEnv } from './testing.js';
import { CHUNK_BYTES } from './transport.js';

describe('grpc process group', () => {
  it.each([2, 3])('%i ranks: every collective matches the reference', async (size) => {
    const worlds = await grpcWorlds(size);
    try {
      await checkCollectives(
        worlds.map((w) => w.group),
        37,
      );
    } finally {
      await closeAll(worlds);
    }
  });

  it('all-reduces a message of several chunks', async () => {
    const worlds = await grpcWorlds(2);
    try {
      const length = (CHUNK_BYTES / 4) * 2 + 1234; // > 2 chunks per ring segment
      const inputs = [input(0, length), input(1, length)];
      const bufs = inputs.map((x) => x.slice());
      await Promise.all(worlds.map((w, r) => w.group.allReduce(bufs[r]!, 'sum')));
      const want = reduced(inputs, 'sum');
      for (const b of bufs) for (let i = 0; i < length; i += 9973) expect(b[i]).toBeCloseTo(want[i]!, 5);
      expect(bufs[0]![length - 1]).toBeCloseTo(want[length - 1]!, 5);
    } finally {
      await closeAll(worlds);
    }
  });

  it('tensor collectives keep shapes; a shape mismatch names both shapes', async () => {
    const worlds = await grpcWorlds(2);
    try {
      const ts = [0, 1].map((r) =>
        tensor(
          Float32Array.from({ length: 6 }, (_, i) => r * 10 + i),
          { shape: [2, 3] },
        ),
      );
      const sums = await Promise.all(worlds.map((w, r) => allReduceTensor(w.group, ts[r]!)));
      expect(sums[1]!.shape).toEqual([2, 3]);
      expect([...(sums[0]!.toArray() as Float32Array)]).toEqual([10, 12, 14, 16, 18, 20]);
      const gathered = await Promise.all(worlds.map((w, r) => allGatherTensor(w.group, ts[r]!)));
      expect(gathered[0]!.shape).toEqual([4, 3]);
      const scattered = await Promise.all(worlds.map((w, r) => reduceScatterTensor(w.group, ts[r]!)));
      expect([...(scattered[1]!.toArray() as Float32Array)]).toEqual([16, 18, 20]);
      const wrong = [
        tensor(new Float32Array(6), { shape: [2, 3] }),
        tensor(new Float32Array(6), { shape: [3, 2] }),
      ];
      const results = await Promise.allSettled(worlds.map((w, r) => allReduceTensor(w.group, wrong[r]!)));
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(
        /rank 1 sent 12 bytes of f32\[3,2\] for .* expected 12 bytes of f32\[2,3\]/,
      );
    } finally {
      await closeAll(worlds);
    }
  });

  it('sub-groups over gRPC', async () => {
    const worlds = await grpcWorlds(4);
    try {
      const tp = worlds.map((w, r) => w.group.subgroup(`tp${r >> 1}`, r < 2 ? [0, 1] : [2, 3]));
      const bufs = worlds.map((_, r) => Float64Array.of(r, 2 * r));
      await Promise.all(tp.map((g, r) => g.allReduce(bufs[r]!, 'max')));
      expect(bufs.map((b) => [...b])).toEqual([
        [1, 2],
        [1, 2],
        [3, 6],
        [3, 6],
      ]);
    } finally {
      await closeAll(worlds);
    }
  });

  it('a rank with the wrong token is refused by the Store', async () => {
    const port = await freePort();
    const good = initWorld({ env: testEnv(0, 2, port, 'right-token-1'), timeoutMs: 3000 });
    const bad = initWorld({ env: testEnv(1, 2, port, 'wrong-token-2'), timeoutMs: 3000 });
    await expect(bad).rejects.toThrow(/refused: run token mismatch \(a different GRIN_RUN_TOKEN/);
    await expect(good).rejects.toThrow(/keys never set|timed out|never/);
  });
});
