// The checkpoint step of `grin train`: the model (as CPU f32 whatever the device), AdamW state,
// tokenizer and the run's counters and Philox state, written atomically by the root rank; every
// rank records the step as the last good one. Under --pp (--tp) rank 0 first gathers the stages'
// parts (the TP shards, or both: pipeline-gather.ts, tensor-parallel-gather.ts,
// pipeline-tensor-gather.ts), so the checkpoint is the
// single process's.
// Test: cd apps/trainer && npx vitest run src/train/run-integrity.test.ts src/train/train.test.ts
import { writeCheckpoint } from './checkpoints.js';
import { elapsedSeconds, type TrainRun } from './loop-state.js';
import { gatherWholeRun } from './pipeline-gather.js';
import { gatherTensorPipelineRun } from './pipeline-tensor-gather.js';
import { gatherTensorParallelRun } from './tensor-parallel-gather.js';

export async function saveCheckpoint(run: TrainRun): Promise<void> {
  run.lastGood = run.step;
  const gathered = run.pipeline?.shard
    ? await gatherTensorPipelineRun(run, run.pipeline, true)
    : run.pipeline
      ? await gatherWholeRun(run, run.pipeline, true)
      : run.tensorParallel
        ? await gatherTensorParallelRun(run, run.tensorParallel, true)
        : null;
  if (!run.par.isRoot) return;
  // The optimizer state is read back as is; only the model needs a CPU copy.
  const cpu = gathered ? { model: gathered.model, copied: false } : run.placed.toCpu();
  try {
    writeCheckpoint(
      run.runDir,
      {
        model: cpu.model,
        optimizer: gathered?.optimizer ?? run.optimizer,
        saveTokenizer: (dir) => run.data.tokenizer.save(dir),
        state: {
          step: run.step,
          tokensSeen: run.tokensSeen,
          generator: run.generator.getState(),
          elapsedSeconds: elapsedSeconds(run),
          bestValLoss: run.bestValLoss,
        },
      },
      run.config.checkpoint.keep,
    );
  } finally {
    if (cpu.copied) cpu.model.dispose();
    gathered?.release();
  }
}
