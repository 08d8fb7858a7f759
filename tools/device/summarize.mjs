// Summarizes a run-gpu-tests.sh log: per group, passed / failed cases with each case's largest
// errors, the first lines of each failure, and the bench table with ours / PyTorch ratios.
// Usage: node tools/device/summarize.mjs LOG   (plain JS, no dependencies: runs on the device)
import { readFileSync } from 'node:fs';

const lines = readFileSync(process.argv[2], 'utf8').split('\n');
const results = [];
const bench = {};
const exits = {};
for (const line of lines) {
  if (line.startsWith('RESULT ')) results.push(JSON.parse(line.slice(7)));
  else if (line.startsWith('BENCH ')) {
    const b = JSON.parse(line.slice(6));
    (bench[b.name] ??= { unit: b.unit })[b.impl] = b.rate;
  } else if (line.startsWith('EXIT ')) {
    const [, group, code] = line.split(' ');
    exits[group] = Number(code);
  }
}
let passed = 0;
let failed = 0;
console.log('\n==== GPU test summary (cuda vs cpu reference) ====');
for (const r of results) {
  if (r.ok) passed++;
  else failed++;
  console.log(
    `${r.ok ? 'PASS' : 'FAIL'} [${r.group}] ${r.name}: ${r.ok ? `${r.note} (${r.ms} ms)` : r.error}`,
  );
}
for (const [group, code] of Object.entries(exits)) {
  const ran = results.filter((r) => r.group === group).length;
  if (code !== 0 || (ran === 0 && !group.startsWith('dev-')))
    console.log(`GROUP ${group}: exit ${code}, ${ran} cases reported (see the log for crashes)`);
}
console.log(`${passed} passed, ${failed} failed`);
if (Object.keys(bench).length) {
  console.log('\n==== bench (median of 5 blocks of 10; ratio = ours / torch, higher is better) ====');
  for (const [name, b] of Object.entries(bench)) {
    const ratio = b.ours && b.torch ? (b.ours / b.torch).toFixed(2) : '-';
    console.log(
      `${name.padEnd(32)} ours ${String(b.ours ?? '-').padStart(8)} ${b.unit}  torch ${String(b.torch ?? '-').padStart(8)}  ratio ${ratio}`,
    );
  }
}
