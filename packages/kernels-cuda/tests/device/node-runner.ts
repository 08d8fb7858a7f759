// node:test runner for the device bundles (tools/device/build-bundle.sh makes one .mjs per group):
// the same cases as the vitest suites, with each case's largest errors printed as a diagnostic
// and as a "RESULT {json}" line that tools/device/run-gpu-tests.sh collects.
import { test } from 'node:test';
import { cudaStatus } from '../../src/index.js';
import type { Case } from '../cases/harness.js';

export function runGroup(group: string, cases: Case[]): void {
  const status = cudaStatus();
  if (!status.available) console.log(`# [kernels-cuda] ${group}: cuda unavailable: ${status.reason}`);
  for (const c of cases) {
    test(`${group}: ${c.name}`, { skip: status.available ? false : status.reason }, (t) => {
      const started = performance.now();
      let note = '';
      try {
        note = c.run();
      } catch (error) {
        console.log(
          `RESULT ${JSON.stringify({ group, name: c.name, ok: false, error: String((error as Error).message).slice(0, 400) })}`,
        );
        throw error;
      }
      const ms = Math.round(performance.now() - started);
      t.diagnostic(`${note} (${ms} ms)`);
      console.log(`RESULT ${JSON.stringify({ group, name: c.name, ok: true, note, ms })}`);
    });
  }
}
