// Pipeline parallelism: one training step of a stage under the 1F1B schedule (PipeDream-Flush, as
// Megatron runs it): stage s of P runs min(P-s-1, M) warm-up forwards, then alternates one forward
// and one backward, then drains its backwards. Activations go forward and their gradients back by
// send/recv; gradients accumulate in the stage's parameters as in one process. A stage may add a
// loss term of its own (e.g. its layers' load-balancing loss) to its backward, or supply its whole
// backward itself, asynchronously (a stage whose layers are tensor-parallel runs its backward
// segment by segment with all-reduces in between). `pipelineForward` runs the stages forward only
// (evaluation, counting passes).
// Test: cd packages/parallel && npx vitest run src/pipeline.test.ts
import { add, backward, mul, sum, type Tensor, tensor } from '@grin-moe/tensor';
import { ParallelError } from './errors.js';
import type { ProcessGroup } from './group.js';

/**
 * What a stage's forward returns: the activation for the next stage (on the last stage, the scalar
 * loss whose gradient is 1), or that activation with `loss`, a scalar term of the step's loss that
 * this stage computed itself and whose gradient is 1 too (a stage before the last: its layers'
 * balance loss, scaled by 1/M like the rest).
 */
export type StageResult = Tensor | { activation: Tensor; loss: Tensor };

export interface PipelineStage {
  /**
   * Runs this stage on micro-batch `micro`. `input` is the previous stage's activation (a leaf that
   * requires grad), or null on the first stage. On the last stage the result is the scalar loss
   * (scale it by 1/M for a mean over micro-batches). May wait (e.g. on an all-reduce of its DP group).
   */
  forward(micro: number, input: Tensor | null): StageResult | Promise<StageResult>;
  /** Shape of the activation this stage receives for `micro` (f32); unused on the first stage. */
  inputShape(micro: number): number[];
  /**
   * Optional: the stage's own backward of `micro` (called in 1F1B order, once per forward), for a
   * forward whose graph autograd cannot follow in one call. `upstream` is the gradient at the
   * activation it returned (null on the last stage, whose loss has gradient 1); it leaves the
   * gradients in its parameters and returns the gradient at `input` (a new tensor; null on the
   * first stage), which pipelineStep sends back and disposes. The forward then returns a plain
   * tensor (its own loss terms are the backward's business); pipelineStep disposes it and the input
   * after this.
   */
  backward?(micro: number, upstream: Tensor | null): Promise<Tensor | null>;
}

/** The order of one stage's work: 'F' forward, 'B' backward, one per micro-batch each. */
export function oneForwardOneBackward(stage: number, stages: number, micros: number): Array<'F' | 'B'> {
  const warmup = Math.min(stages - stage - 1, micros);
  const order: Array<'F' | 'B'> = Array(warmup).fill('F');
  for (let m = warmup; m < micros; m++) order.push('F', 'B');
  for (let m = 0; m < warmup; m++) order.push('B');
  return order;
}

async function receiveActivation(
  group: ProcessGroup,
  stage: Pick<PipelineStage, 'inputShape'>,
  micro: number,
): Promise<Tensor> {
  const shape = stage.inputShape(micro);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  await group.recv(data, group.rank - 1, `f32[${shape}]`);
  return tensor(data, { shape });
}

function sendActivation(group: ProcessGroup, output: Tensor): Promise<void> {
  return group.send(
    Float32Array.from(output.toArray() as Float32Array),
    group.rank + 1,
    `f32[${output.shape}]`,
  );
}

/** The gradient at `output` from the next stage. */
async function receiveGradient(group: ProcessGroup, output: Tensor): Promise<Tensor> {
  const grad = new Float32Array(output.size);
  await group.recv(grad, group.rank + 1, `f32[${output.shape}]`);
  return tensor(grad, { shape: [...output.shape] });
}

/** The gradient at `input` back to the previous stage (copied out: the caller may dispose it). */
function sendGradient(group: ProcessGroup, gradient: Tensor, input: Tensor): Promise<void> {
  return group.send(
    Float32Array.from(gradient.toArray() as Float32Array),
    group.rank - 1,
    `f32[${input.shape}]`,
  );
}

function lossValue(s: number, output: Tensor): number {
  if (output.size !== 1)
    throw new ParallelError(
      `pipeline stage ${s}: the last stage must return a scalar loss, got ${output.describe()}`,
    );
  return Number((output.toArray() as Float32Array)[0]);
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
  const pending: Array<{ input: Tensor | null; output: Tensor; own: Tensor | null; micro: number }> = [];
  const sends: Promise<void>[] = [];
  let forwards = 0;
  for (const work of oneForwardOneBackward(s, group.size, micros)) {
    if (work === 'F') {
      const micro = forwards++;
      const input = s > 0 ? (await receiveActivation(group, stage, micro)).setRequiresGrad(true) : null;
      const result = await stage.forward(micro, input);
      const output = 'activation' in result ? result.activation : result;
      const own = 'activation' in result ? result.loss : null;
      if (own && stage.backward)
        throw new ParallelError(
          `pipeline stage ${s}: a stage with its own backward adds its loss terms there, not as the forward's 'loss'`,
        );
      if (last) {
        if (own)
          throw new ParallelError(`pipeline stage ${s}: the last stage returns its whole loss as one scalar`);
        losses.push(lossValue(s, output));
      } else sends.push(sendActivation(group, output));
      pending.push({ input, output, own, micro });
    } else if (stage.backward) {
      const { input, output, micro } = pending.shift()!;
      const upstream = last ? null : await receiveGradient(group, output);
      const gradient = await stage.backward(micro, upstream);
      upstream?.dispose();
      output.dispose();
      if (input) {
        if (!gradient)
          throw new ParallelError(`pipeline stage ${s}: its backward returned no gradient for its input`);
        sends.push(sendGradient(group, gradient, input));
        gradient.dispose();
        input.dispose();
      } else gradient?.dispose();
    } else {
      const { input, output, own } = pending.shift()!;
      if (last) backward(output);
      else {
        const upstream = await receiveGradient(group, output);
        // One root for both: the gradient of sum(output * upstream) with respect to output is upstream.
        if (own) backward(add(sum(mul(output, upstream)), own));
        else backward(output, upstream);
      }
      output.dispose();
      own?.dispose();
      if (input) {
        const gradient = input.grad;
        if (!gradient)
          throw new ParallelError(`pipeline stage ${s}: the activation received got no gradient`);
        sends.push(sendGradient(group, gradient, input));
        input.dispose();
      }
    }
  }
  await Promise.all(sends);
  return losses;
}

/**
 * Forward only, micro-batches 0..micros-1 in order through the stages: each stage receives the
 * previous stage's activation and sends its own on. Returns the last stage's scalar results in
 * micro-batch order (empty elsewhere). Wrap the stage's forward in noGrad (noGrad around this call
 * would not reach past its first await).
 */
export async function pipelineForward(
  group: ProcessGroup,
  stage: {
    forward(micro: number, input: Tensor | null): Tensor | Promise<Tensor>;
    inputShape(micro: number): number[];
  },
  micros: number,
): Promise<number[]> {
  const s = group.rank;
  const last = s === group.size - 1;
  const results: number[] = [];
  const sends: Promise<void>[] = [];
  for (let micro = 0; micro < micros; micro++) {
    const input = s > 0 ? await receiveActivation(group, stage, micro) : null;
    const output = await stage.forward(micro, input);
    if (last) results.push(lossValue(s, output));
    else sends.push(sendActivation(group, output));
    output.dispose();
    input?.dispose();
  }
  await Promise.all(sends);
  return results;
}
