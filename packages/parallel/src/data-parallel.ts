// Data parallelism around a single-device model: each DP rank takes its slice of the global batch
// (dataShard), draws its slice of the random numbers a single process would draw for the whole
// batch (ShardedGenerator), sums the load-balancing counts over the group in one call
// (globalCounts), and averages gradients in buckets that start reducing as soon as backward has
// produced them (GradientBuckets, through identity taps on the parameters). Together: the same
// loss and update as one process on the global batch.
// Test: cd packages/parallel && npx vitest run src/data-parallel.test.ts
import { type BlockReservation, customOp, Generator, type Tensor, tensor } from '@grin-moe/tensor';
import { ParallelError } from './errors.js';
import type { ProcessGroup } from './group.js';
import { allReduceTensor } from './tensors.js';

/** The rows [first, first + count) of a global batch of `rows` that DP rank `rank` of `size` takes. */
export function dataShard(rows: number, size: number, rank: number): { first: number; count: number } {
  if (!Number.isInteger(rows) || rows % size !== 0)
    throw new ParallelError(
      `data parallel: the batch of ${rows} rows must divide by the ${size} data-parallel ranks`,
    );
  const count = rows / size;
  return { first: rank * count, count };
}

/**
 * A Generator that, asked for n values, draws the n * parts values a single process would draw for
 * the whole batch and keeps part `index`. Every draw of the model is laid out token-major ([T, ...]),
 * so DP rank r gets exactly the draws of its own tokens. Its state is the full stream's state, the
 * same on every rank (checkpoints do not depend on the layout).
 */
export class ShardedGenerator extends Generator {
  constructor(
    source: Generator,
    readonly parts: number,
    readonly index: number,
  ) {
    super(0);
    if (!(Number.isInteger(parts) && parts >= 1 && index >= 0 && index < parts))
      throw new ParallelError(`ShardedGenerator: part ${index} of ${parts} is not a valid shard`);
    this.setState(source.getState());
  }

  private shard<A extends Float32Array | Float64Array | Uint32Array | Uint8Array | Int32Array>(
    out: A,
    fill: (whole: A) => void,
  ): A {
    if (this.parts === 1) {
      fill(out);
      return out;
    }
    const whole = new (out.constructor as new (n: number) => A)(out.length * this.parts);
    fill(whole);
    out.set(whole.subarray(this.index * out.length, (this.index + 1) * out.length) as never);
    return out;
  }

  /**
   * Device-style draws (the `random` kernel at a Philox reservation): reserve the whole batch's
   * blocks and hand out this part's. Exact when each part's draw fills whole blocks of 4 words,
   * i.e. a multiple of 4 f32 (2 f64) values per rank: dataParallelChecks() in the trainer checks
   * that tokens per rank divide by 4.
   */
  override reserveBlocks(blockCount: number): BlockReservation {
    if (this.parts === 1) return super.reserveBlocks(blockCount);
    const whole = super.reserveBlocks(blockCount * this.parts);
    const low = whole.counter[0] + this.index * blockCount;
    return {
      key: whole.key,
      counter: [low % 2 ** 32, (whole.counter[1] + Math.floor(low / 2 ** 32)) % 2 ** 32],
    };
  }

  override fillUint32(out: Uint32Array): Uint32Array {
    return this.shard(out, (w) => super.fillUint32(w));
  }
  override fillUniform(out: Float32Array | Float64Array, low = 0, high = 1) {
    return this.shard(out, (w) => super.fillUniform(w, low, high));
  }
  override fillNormal(out: Float32Array | Float64Array, mean = 0, std = 1) {
    if (out.length % 2 === 1 && this.parts > 1)
      throw new ParallelError(
        `ShardedGenerator: an odd normal draw (${out.length}) cannot be split by pairs`,
      );
    return this.shard(out, (w) => super.fillNormal(w, mean, std));
  }
  override fillExponential(out: Float32Array | Float64Array, rate = 1) {
    return this.shard(out, (w) => super.fillExponential(w, rate));
  }
  override fillGumbel(out: Float32Array | Float64Array) {
    return this.shard(out, (w) => super.fillGumbel(w));
  }
  override fillBernoulli(out: Uint8Array, p: number): Uint8Array {
    return this.shard(out, (w) => super.fillBernoulli(w, p));
  }
  override fillRandint(out: Int32Array, low: number, high: number): Int32Array {
    return this.shard(out, (w) => super.fillRandint(w, low, high));
  }
}

/** balanceLoss's allReduce for GRIN's global load balancing: counts and token totals summed over the group, in one call. */
export function globalCounts(group: ProcessGroup): (t: Tensor) => Promise<Tensor> {
  return (t) => allReduceTensor(group, t, 'sum');
}

const tap = customOp<{ onGrad: (g: Tensor) => void }>('dp_gradient_tap', {
  forward: (ctx, [x], extra) => {
    ctx.data.onGrad = extra.onGrad;
    return [x!.alias()];
  },
  backward: (ctx, [g]) => {
    if (g) (ctx.data.onGrad as (g: Tensor) => void)(g);
    return [g];
  },
});

interface Bucket {
  params: Tensor[];
  offsets: number[];
  /** The gradients, then one flag per parameter: 1 where this rank produced a gradient. */
  data: Float32Array | Float64Array;
  arrived: boolean[];
  ready: number;
  reduction: Promise<void> | null;
}

/**
 * Averages the gradients of `params` over the group in buckets of about bucketBytes, in reverse
 * parameter order (the order backward produces them). Use: take `tapped()` in place of the
 * parameters for the forward of the micro-step that ends the accumulation, run backward, then
 * `await finish()`: every parameter's .grad is then the group average. A bucket starts reducing
 * as soon as backward has produced all of its gradients; buckets where some parameter got none on
 * this rank (an expert no local token picked) reduce in finish(), and a parameter that got no
 * gradient on any rank keeps grad null, as in a single process.
 */
export class GradientBuckets {
  private readonly buckets: Bucket[] = [];
  private readonly where = new Map<Tensor, { bucket: Bucket; index: number }>();
  private armed = false;
  private round = 0;

  constructor(
    private readonly group: ProcessGroup,
    readonly params: Tensor[],
    bucketBytes = 4 * 1024 * 1024,
  ) {
    let current: Tensor[] = [];
    let bytes = 0;
    const close = () => {
      if (!current.length) return;
      const offsets: number[] = [];
      let total = 0;
      for (const p of current) {
        offsets.push(total);
        total += p.size;
      }
      const length = total + current.length;
      const bucket: Bucket = {
        params: current,
        offsets,
        data: current[0]!.dtype === 'f64' ? new Float64Array(length) : new Float32Array(length),
        arrived: current.map(() => false),
        ready: 0,
        reduction: null,
      };
      current.forEach((p, index) => this.where.set(p, { bucket, index }));
      this.buckets.push(bucket);
      current = [];
      bytes = 0;
    };
    for (const p of [...params].reverse()) {
      if (p.device !== 'cpu' || (p.dtype !== 'f32' && p.dtype !== 'f64'))
        throw new ParallelError(
          `GradientBuckets: parameter ${p.name ?? ''} ${p.describe()} must be a CPU f32/f64 tensor`,
        );
      if (current.length && current[0]!.dtype !== p.dtype) close();
      current.push(p);
      bytes += p.size * (p.dtype === 'f64' ? 8 : 4);
      if (bytes >= bucketBytes) close();
    }
    close();
  }

  get bucketCount(): number {
    return this.buckets.length;
  }

  /** Identity views of the parameters whose backward hands each finished gradient to its bucket. */
  tapped(): Tensor[] {
    this.armed = true;
    this.round++;
    for (const b of this.buckets) {
      b.ready = 0;
      b.reduction = null;
      b.arrived.fill(false);
      b.data.fill(0);
    }
    return this.params.map((p) => tap([p], { onGrad: (g) => this.arrived(p, g) })[0]!);
  }

  private arrived(p: Tensor, g: Tensor): void {
    if (!this.armed) return;
    const { bucket, index } = this.where.get(p)!;
    const target = bucket.data.subarray(bucket.offsets[index]!, bucket.offsets[index]! + p.size);
    target.set(g.toArray() as Float32Array);
    // Gradients accumulated by earlier micro-steps join this one's before the reduction.
    if (p.grad) {
      const earlier = p.grad.toArray() as Float32Array;
      for (let i = 0; i < target.length; i++) target[i]! += earlier[i]!;
    }
    bucket.arrived[index] = true;
    bucket.data[bucket.data.length - bucket.params.length + index] = 1;
    bucket.ready++;
    if (bucket.ready === bucket.params.length) bucket.reduction = this.reduce(bucket);
  }

  private reduce(bucket: Bucket): Promise<void> {
    // A fixed tag per bucket and round: ranks may finish buckets in different orders.
    const tag = `grad-bucket${this.buckets.indexOf(bucket)}@${this.round}`;
    return this.group.allReduce(bucket.data, 'avg', undefined, tag);
  }

  /** Waits for every bucket and installs the averaged gradients. */
  async finish(): Promise<void> {
    if (!this.armed) throw new ParallelError('GradientBuckets.finish: no tapped forward/backward to finish');
    this.armed = false;
    for (const bucket of this.buckets) {
      if (bucket.reduction) continue;
      // Parameters backward never reached on this rank: their earlier micro-steps' gradient, or zero.
      bucket.params.forEach((p, i) => {
        if (bucket.arrived[i]) return;
        const target = bucket.data.subarray(bucket.offsets[i]!, bucket.offsets[i]! + p.size);
        if (p.grad) {
          target.set(p.grad.toArray() as Float32Array);
          bucket.data[bucket.data.length - bucket.params.length + i] = 1;
        }
      });
      bucket.reduction = this.reduce(bucket);
    }
    await Promise.all(this.buckets.map((b) => b.reduction));
    for (const bucket of this.buckets) {
      const flags = bucket.data.length - bucket.params.length;
      bucket.params.forEach((p, i) => {
        p.grad?.dispose();
        p.grad = null;
        if (bucket.data[flags + i] === 0) return;
        const fresh = tensor(bucket.data.slice(bucket.offsets[i]!, bucket.offsets[i]! + p.size), {
          shape: [...p.shape],
          dtype: p.dtype,
        });
        p.grad = fresh.alias({ track: false });
        fresh.dispose();
      });
    }
  }
}
