// Device bundle entry (tools/device/build-bundle.sh -> .device/train-parity.mjs): `grin train`'s
// first 20 losses on cuda (f32 and bf16) against the CPU with the same seed, then `grin sft` and
// `grin dpo`'s curves the same way (regularizers on), then tokens/s of the default model size on
// each device. Prints PASS/FAIL lines; exits 1 on a mismatch.
// Run on a GPU machine: node .device/train-parity.mjs [steps]
// Test: cd apps/trainer && npx vitest run src/train
import { comparePostDevices, formatPostReport } from '../post/device-parity.js';
import { bf16Probe, compareDevices, formatReport, speedComparison } from './device-parity.js';

const steps = Number(process.argv[2] ?? 20);
const probe = await bf16Probe();
console.log(
  `bf16 compute probe (one training step of the parity model): logits ${probe.logits}, loss ${probe.loss}, leaf grads ${probe.grads}`,
);
const report = await compareDevices(steps);
console.log(formatReport(report));
// RESULT lines for tools/device/summarize.mjs, as the kernel test groups print them
for (const [label, diff] of Object.entries(report.maxDiff)) {
  const ok = diff <= report.tolerance[label]!;
  const note = `max |loss difference| ${diff.toExponential(3)} over ${steps} steps (tolerance ${report.tolerance[label]})`;
  console.log(
    `RESULT ${JSON.stringify({ group: 'train-parity', name: `grin train ${label} vs cpu f32`, ok, note, error: ok ? undefined : note, ms: 0 })}`,
  );
}
let postPass = true;
for (const kind of ['sft', 'dpo'] as const) {
  const post = await comparePostDevices(kind);
  console.log(formatPostReport(post));
  postPass &&= post.pass;
  for (const [label, diff] of Object.entries(post.maxDiff)) {
    const ok = diff <= post.tolerance[label]!;
    const note = `max |loss difference| ${diff.toExponential(3)} over ${post.runs[0]!.losses.length} steps (tolerance ${post.tolerance[label]})`;
    console.log(
      `RESULT ${JSON.stringify({ group: 'train-parity', name: `grin ${kind} ${label} vs cpu f32`, ok, note, error: ok ? undefined : note, ms: 0 })}`,
    );
  }
}
if (process.env.SKIP_SPEED !== '1') {
  const runs = await speedComparison();
  const cpu = runs[0]!.tokensPerSecond;
  for (const r of runs) {
    console.log(
      `SPEED ${r.label}: ${r.tokensPerSecond.toFixed(0)} tokens/s (median of ${r.losses.length - 1} steps), ${(r.tokensPerSecond / cpu).toFixed(2)}x cpu f32 in the same run; loss ${r.losses[0]!.toFixed(4)} -> ${r.losses.at(-1)!.toFixed(4)}`,
    );
  }
}
process.exit(report.pass && postPass ? 0 : 1);
