// Pipeline parallelism: one training step of a stage under the 1F1B schedule (PipeDream-Flush, as
// Megatron runs it): stage s of P runs min(P-s-1, M) warm-up forwards, then alternates one forward
// and one backward, then drains its backwards. Activations go forward and their gradients back by
// send/recv; gradients accumulate in the stage's parameters as in one process.
// Test: cd packages/parallel && npx vitest run src/pipeline.test.ts
import { backward, type Tensor, tensor } from '@grin-moe/tensor';
import { ParallelError } from './errors.js';
import type { ProcessGroup } from './group.js';

export interface PipelineStage {
  /**
   * Runs this stage on micro-batch `micro`. `input` is the previous stage's activation (a leaf that
   * requires grad), or null on the first stage. Returns the activation for the next stage, or on
   * the last stage the scalar loss whose gradient is 1 (scale it by 1/M for a mean over micro-batches).
   */
  forward(micro: number, input: Tensor | null): Tensor;
  /** Shape of the activation this stage receives for `micro` (f32); unused on the first stage. */
  inputShape(micro: number): number[];
}

/** The order of one stage's work: 'F' forward, 'B' backward, one per micro-batch each. */
export function oneForwardOneBackward(stage: number, stages: number, micros: number): Array<'F' | 'B'> {
  const warmup = Math.min(stages - stage - 1, micros);
  const order: Array<'F' | 'B'> = Array(warmup).fill('F');
  for (let m = warmup; m < micros; m++) order.push('F', 'B');
  for (let m = 0; m < warmup; m++) order.push('B');
  return order;
}

/**
 * Runs micro-batches 0..micros-1 through this rank's stage (`group` ranks are the stages in order)
 * and back. Returns the last stage's losses (empty elsewhere); parameters hold their gradients.
 */
export async function pipelineStep(
  group: ProcessGroup,
  stage: PipelineStage,
  micros: number,
): Promise<number[]> {
  const s = group.rank;
  const last = s === group.size - 1;
  const losses: number[] = [];
  const pending: Array<{ input: Tensor | null; output: Tensor }> = [];
  const sends: Promise<void>[] = [];
  let forwards = 0;
  for (const work of oneForwardOneBackward(s, group.size, micros)) {
    if (work === 'F') {
      const micro = forwards++;
      let input: Tensor | null = null;
      if (s > 0) {
        const shape = stage.inputShape(micro);
        const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
        await group.recv(data, s - 1, `f32[${shape}]`);
        input = tensor(data, { shape }).setRequiresGrad(true);
      }
      const output = stage.forward(micro, input);
      if (last) {
        if (output.size !== 1)
          throw new ParallelError(
            `pipeline stage ${s}: the last stage must return a scalar loss, got ${output.describe()}`,
          );
        losses.push(Number((output.toArray() as Float32Array)[0]));
      } else {
        sends.push(
          group.send(Float32Array.from(output.toArray() as Float32Array), s + 1, `f32[${output.shape}]`),
        );
      }
      pending.push({ input, output });
    } else {
      const { input, output } = pending.shift()!;
      if (last) backward(output);
      else {
        const grad = new Float32Array(output.size);
        await group.recv(grad, s + 1, `f32[${output.shape}]`);
        backward(output, tensor(grad, { shape: [...output.shape] }));
      }
      output.dispose();
      if (input) {
        const gradient = input.grad;
        if (!gradient)
          throw new ParallelError(`pipeline stage ${s}: the activation received got no gradient`);
        sends.push(
          group.send(Float32Array.from(gradient.toArray() as Float32Array), s - 1, `f32[${input.shape}]`),
        );
        input.dispose();
      }
    }
  }
  await Promise.all(sends);
  return losses;
}
