// `grin bench allreduce --quick --json` through the built CLI: one JSON object in DESIGN.md's form,
// rows for 2 and 4 processes at 1 and 4 MiB whose bus bandwidths are the ring's bytes over the
// measured times, grin_vs_tcp and grin_vs_tcp_reused ratios that are those bandwidths' quotients,
// and a dp=2 efficiency.
// Test: pnpm turbo run build --filter=@grin-moe/trainer... && cd apps/trainer && npx vitest run src/commands/bench-allreduce.test.ts
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

interface Row {
  mib: number;
  grin_bus_gbps: number;
  tcp_bus_gbps: number;
  tcp_reused_bus_gbps: number;
  grin_ms: number;
  tcp_ms: number;
  tcp_reused_ms: number;
}

describe.skipIf(!existsSync(cli))('grin bench allreduce (built CLI)', () => {
  it('reports bus bandwidths, grin_vs_tcp per size and the dp=2 efficiency', () => {
    const bench = spawnSync(process.execPath, [cli, 'bench', 'allreduce', '--quick', '--json'], {
      encoding: 'utf8',
      timeout: 400_000,
    });
    expect(bench.status, bench.stderr).toBe(0);
    const report = JSON.parse(bench.stdout);
    expect(Object.keys(report)).toEqual(['bench', 'device', 'results', 'ratios']);
    expect(report.bench).toBe('allreduce');
    for (const ranks of [2, 4]) {
      const rows = report.results[`ranks_${ranks}`] as Row[];
      expect(rows.map((r) => r.mib)).toEqual([1, 4]);
      for (const row of rows) {
        const ringMiB = (row.mib * 2 * (ranks - 1)) / ranks; // what each rank sends
        expect(row.grin_bus_gbps).toBeCloseTo((ringMiB * 2 ** 20) / (row.grin_ms * 1e6), 1);
        expect(row.tcp_bus_gbps).toBeCloseTo((ringMiB * 2 ** 20) / (row.tcp_ms * 1e6), 1);
        expect(row.tcp_reused_bus_gbps).toBeCloseTo((ringMiB * 2 ** 20) / (row.tcp_reused_ms * 1e6), 1);
        expect(report.ratios[`grin_vs_tcp_${ranks}ranks_${row.mib}mib`]).toBeCloseTo(
          row.grin_bus_gbps / row.tcp_bus_gbps,
          1,
        );
        expect(report.ratios[`grin_vs_tcp_reused_${ranks}ranks_${row.mib}mib`]).toBeCloseTo(
          row.grin_bus_gbps / row.tcp_reused_bus_gbps,
          1,
        );
      }
    }
    const dp = report.results.data_parallel;
    expect(report.ratios.dp2_efficiency).toBeCloseTo(dp.dp2_tokens_per_s / dp.single_tokens_per_s, 2);
    expect(dp.dp2_tokens_per_s).toBeGreaterThan(0);
  }, 420_000);
});
