// `grin bench NAME [--json]`: speed benchmarks, each reporting ratios against a baseline measured
// in the same run (DESIGN.md: {"bench", "device", "results", "ratios"}).
// Test: cd apps/trainer && npx vitest run src/commands
import { CliError, type Command, parseFlags } from '../args.js';

type BenchRunner = (options: { json: boolean; quick: boolean }) => Promise<BenchReport>;

export interface BenchReport {
  bench: string;
  device: string;
  results: Record<string, unknown>;
  ratios: Record<string, number>;
}

const benches: Record<string, () => Promise<BenchRunner>> = {
  matmul: async () => (await import('./bench-matmul.js')).benchMatmul,
  router: async () => (await import('./bench-router.js')).benchRouter,
  gemm: async () => (await import('./bench-gemm.js')).benchGemm,
  attention: async () => (await import('./bench-attention.js')).benchAttention,
  moe: async () => (await import('./bench-moe.js')).benchMoe,
  train: async () => (await import('./bench-train.js')).benchTrain,
  allreduce: async () => (await import('./bench-allreduce.js')).benchAllReduce,
};

export const benchCommand: Command = {
  name: 'bench',
  summary: `speed benchmarks with ratios against a baseline from the same run (${Object.keys(benches).join(', ')})`,
  usage: `grin bench ${Object.keys(benches).join('|')} [--json] [--quick]`,
  flags: {
    json: {
      kind: 'boolean',
      help: 'print one JSON object {bench, device, results, ratios} and nothing else',
    },
    quick: { kind: 'boolean', help: 'fewer repetitions or sizes, every bench (for smoke tests)' },
  },
  async run(argv) {
    const { flags, positional } = parseFlags(benchCommand, argv);
    const name = positional[0];
    const load = name ? benches[name] : undefined;
    if (!name || !load) {
      throw new CliError(
        `bench: ${name ? `unknown benchmark '${name}'` : 'name a benchmark'}; valid: ${Object.keys(benches).join(', ')}`,
      );
    }
    const runner = await load();
    const report = await runner({ json: Boolean(flags.json), quick: Boolean(flags.quick) });
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  },
};
