// @grin-moe/dashboard: the server side (the page itself is built by Vite from src/web).
// `grin dashboard` calls ensureWebBuilt + startDashboard. Test: cd apps/dashboard && npx vitest run

export { listRuns, RUN_FILES } from './server/api.js';
export { type MetricRecord, type MetricsChunk, readMetricsFrom } from './server/metrics-tail.js';
export { decodeRunPath, PathRefused, resolveInRuns } from './server/safe-path.js';
export {
  type DashboardOptions,
  type DashboardServer,
  defaultWebDir,
  ensureWebBuilt,
  packageRoot,
  startDashboard,
} from './server.js';
