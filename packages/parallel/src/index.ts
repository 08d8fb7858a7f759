// @grin-moe/parallel: the rendezvous Store (gRPC, hosted by rank 0), process groups (`grpc` across
// processes, `local` in one process), collectives on typed arrays and CPU tensors, and the
// data-parallel pieces (gradient buckets, global load-balancing counts, per-rank shards and draws),
// and the pipeline step (1F1B) and forward-only pass.
// Test: cd packages/parallel && npx vitest run

export { allReduceBandwidth, type BandwidthRow, ringBytes, socketRingBandwidth } from './bench.js';
export * from './data-parallel.js';
export * from './env.js';
export * from './errors.js';
export { decodeFrame, encodeFrame, type Frame } from './frame.js';
export { type GroupHooks, ProcessGroup, type ReduceOp } from './group.js';
export * from './init.js';
export { localWorld } from './local.js';
export {
  oneForwardOneBackward,
  type PipelineStage,
  pipelineForward,
  pipelineStep,
  type StageResult,
} from './pipeline.js';
export { protoPath, WINDOW_BYTES } from './proto.js';
export * from './store.js';
export * from './tensors.js';
export { closeAll, freePort, grpcWorlds, testEnv } from './testing.js';
export { CHUNK_BYTES, type Elements } from './transport.js';
