// Prints the estimator report as a Markdown table (numbers quoted in the package README).
// Test: cd packages/router-sparsemixer && npx vitest run src/report
import { estimatorReport } from './estimator.js';

const rows = estimatorReport(Number(process.env.SAMPLES ?? 200_000));
console.log(
  '| setting | cos(SparseMixer-v2, exact) | cos(gate proxy, exact) | rel. error SparseMixer-v2 | rel. error gate proxy |',
);
console.log('|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.setting} | ${r.cosineSparseMixer.toFixed(4)} | ${r.cosineProxy.toFixed(4)} | ${r.relErrorSparseMixer.toFixed(3)} | ${r.relErrorProxy.toFixed(3)} |`,
  );
}
