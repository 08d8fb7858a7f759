// `grin bench router`: tokens/s of routing forward + backward for T = 8192, E = 16 on the CPU,
// sparsemixer-v2 next to gshard-top2 measured in the same run (ratio > 1: ours is faster).
// Test: cd apps/trainer && npx vitest run src/commands
import { cpus } from 'node:os';
import { getRouter } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { BenchReport } from './bench.js';

function timeRouter(name: string, logits: T.Tensor, upstream: T.Tensor, reps: number): number[] {
  const router = getRouter(name);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    T.tidy(() => {
      const x = T.clone(logits).setRequiresGrad();
      const out = router.route(x, { training: true, jitterEps: 0.01, generator: new T.Generator(r) });
      T.sum(T.mul(out.weights_TK, upstream)).backward();
      x.grad!.toArray();
    });
    times.push(performance.now() - start);
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchRouter({ json, quick }: { json: boolean; quick: boolean }): Promise<BenchReport> {
  const tokens = 8192;
  const experts = 16;
  const logits = T.randn([tokens, experts], { generator: new T.Generator(0) });
  const upstream = T.randn([tokens, 2], { generator: new T.Generator(1) });
  const reps = quick ? 3 : 9;
  timeRouter('sparsemixer-v2', logits, upstream, 2);
  timeRouter('gshard-top2', logits, upstream, 2);
  const ours: number[] = [];
  const base: number[] = [];
  // Interleave so that both see the same machine load.
  for (let r = 0; r < reps; r++) {
    ours.push(...timeRouter('sparsemixer-v2', logits, upstream, 1));
    base.push(...timeRouter('gshard-top2', logits, upstream, 1));
  }
  const oursTps = tokens / (median(ours) / 1000);
  const baseTps = tokens / (median(base) / 1000);
  const report: BenchReport = {
    bench: 'router',
    device: `cpu (${cpus()[0]?.model ?? 'unknown'})`,
    results: {
      tokens,
      experts,
      sparsemixer_v2_tokens_per_s: oursTps,
      gshard_top2_tokens_per_s: baseTps,
      ms: { sparsemixer_v2: median(ours), gshard_top2: median(base) },
    },
    ratios: { 'sparsemixer-v2_vs_gshard-top2_8192x16': oursTps / baseTps },
  };
  if (!json) {
    process.stdout.write(
      `routing forward+backward, T=${tokens}, E=${experts}, f32 CPU (median of ${reps})\n`,
    );
    process.stdout.write(
      `  sparsemixer-v2  ${(oursTps / 1e6).toFixed(3)} M tokens/s  (${median(ours).toFixed(1)} ms)\n`,
    );
    process.stdout.write(
      `  gshard-top2     ${(baseTps / 1e6).toFixed(3)} M tokens/s  (${median(base).toFixed(1)} ms)\n`,
    );
    process.stdout.write(`  ratio sparsemixer-v2 / gshard-top2: ${(oursTps / baseTps).toFixed(3)}\n`);
  }
  return report;
}
