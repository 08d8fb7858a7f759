// ProcessGroup: the collectives over any Transport. all-reduce (sum, avg, max), reduce-scatter and
// all-gather run as rings (each step sends one segment to the next rank while reducing the one
// from the previous rank as its chunks land); broadcast is a star from the root; barrier is a
// one-element all-reduce; send/recv are numbered per pair. Sub-groups (DP, PP, TP axes) share the
// transport under their own key prefix. Every rank ends an all-reduce with the same bits: each
// segment is reduced on one rank and then copied to all.
// Test: cd packages/parallel && npx vitest run src/local-group.test.ts src/grpc-group.test.ts
import type { Combine } from './combine.js';
import { ParallelError, RankFailure } from './errors.js';
import { bytesOf, dtypeOf, type Elements, type Transport } from './transport.js';

export type ReduceOp = 'sum' | 'avg' | 'max';
const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max'];

/** The two halves of a ring all-reduce; at step s rank r sends segment r - s - SEND_SHIFT[phase]. */
type RingPhase = 'rs' | 'ag';
const SEND_SHIFT: Record<RingPhase, number> = { rs: 1, ag: 0 };

export interface GroupHooks {
  /** Called once with the first failure this rank sees (to spread it to the other ranks). */
  onFailure?: (failure: RankFailure) => void;
  /** Called by close() of the world group (stops servers, the Store). */
  onClose?: () => Promise<void>;
}

export class ProcessGroup {
  /** This process's rank inside the group. */
  readonly rank: number;
  readonly size: number;
  private sequence = 0;
  private readonly pairCounters = new Map<string, number>();
  private readonly children = new Set<string>();

  constructor(
    private readonly transport: Transport,
    readonly backend: 'local' | 'grpc',
    readonly name: string,
    /** World ranks of the members, in group-rank order. */
    readonly ranks: readonly number[],
    private readonly hooks: GroupHooks = {},
  ) {
    this.rank = ranks.indexOf(transport.rank);
    this.size = ranks.length;
    if (this.rank < 0)
      throw new ParallelError(
        `group '${name}': world rank ${transport.rank} is not a member (members ${ranks.join(', ')})`,
      );
  }

  /** World rank of this process. */
  get worldRank(): number {
    return this.transport.rank;
  }

  /**
   * A sub-group over these world ranks (e.g. one DP replica set). Every member must create it with
   * the same name and ranks; non-members need not call.
   */
  subgroup(name: string, ranks: number[]): ProcessGroup {
    if (this.children.has(name))
      throw new ParallelError(`group '${this.name}': sub-group '${name}' exists already`);
    const unique = new Set(ranks);
    if (unique.size !== ranks.length || ranks.some((r) => !this.ranks.includes(r)))
      throw new ParallelError(
        `group '${this.name}': sub-group '${name}' ranks [${ranks.join(', ')}] must be distinct members of [${this.ranks.join(', ')}]`,
      );
    this.children.add(name);
    return new ProcessGroup(this.transport, this.backend, `${this.name}.${name}`, ranks, {
      onFailure: this.hooks.onFailure,
    });
  }

  // ---- collectives ------------------------------------------------------------------------------

  /**
   * In place. `tag`, when given, names this reduction instead of the call's sequence number, for
   * reductions that ranks may start in different orders (gradient buckets); it must be unique.
   */
  async allReduce(
    data: Elements,
    op: ReduceOp = 'sum',
    descriptor: string = dtypeOf(data),
    tag?: string,
  ): Promise<void> {
    checkOp(op, 'allReduce');
    const key = tag === undefined ? this.nextKey('all_reduce') : this.taggedKey(tag);
    if (this.size === 1) return;
    const segments = split(data.length, this.size);
    await this.guard(async () => {
      const folds = this.postRing('rs', data, segments, key, descriptor, op === 'max' ? 'max' : 'sum');
      const copies = this.postRing('ag', data, segments, key, descriptor, 'copy');
      await this.runRing('rs', data, segments, key, descriptor, folds);
      if (op === 'avg') {
        const [start, end] = segments[this.rank]!;
        for (let i = start; i < end; i++) data[i] = data[i]! / this.size;
      }
      await this.runRing('ag', data, segments, key, descriptor, copies);
    });
  }

  /** output[r*n .. (r+1)*n) = rank r's input (n = input.length). */
  async allGather(input: Elements, output: Elements, descriptor: string = dtypeOf(input)): Promise<void> {
    const key = this.nextKey('all_gather');
    this.checkPair(input, output, 'allGather', 'output');
    const n = input.length;
    output.set(input, this.rank * n);
    if (this.size === 1) return;
    const segments = Array.from({ length: this.size }, (_, r) => [r * n, (r + 1) * n] as [number, number]);
    await this.guard(() =>
      this.runRing(
        'ag',
        output,
        segments,
        key,
        descriptor,
        this.postRing('ag', output, segments, key, descriptor, 'copy'),
      ),
    );
  }

  /** output = reduction over ranks of input[rank*n .. (rank+1)*n) (n = output.length). */
  async reduceScatter(
    input: Elements,
    output: Elements,
    op: ReduceOp = 'sum',
    descriptor: string = dtypeOf(input),
  ): Promise<void> {
    checkOp(op, 'reduceScatter');
    const key = this.nextKey('reduce_scatter');
    this.checkPair(output, input, 'reduceScatter', 'input');
    const n = output.length;
    const work = input.slice();
    if (this.size > 1) {
      const segments = Array.from({ length: this.size }, (_, r) => [r * n, (r + 1) * n] as [number, number]);
      const combine = op === 'max' ? 'max' : 'sum';
      await this.guard(() =>
        this.runRing(
          'rs',
          work,
          segments,
          key,
          descriptor,
          this.postRing('rs', work, segments, key, descriptor, combine),
        ),
      );
    }
    output.set(work.subarray(this.rank * n, (this.rank + 1) * n));
    if (op === 'avg') for (let i = 0; i < n; i++) output[i] = output[i]! / this.size;
  }

  async broadcast(data: Elements, root: number, descriptor: string = dtypeOf(data)): Promise<void> {
    if (!Number.isInteger(root) || root < 0 || root >= this.size)
      throw new ParallelError(
        `group '${this.name}': broadcast root ${root} must be a rank in 0..${this.size - 1}`,
      );
    const key = this.nextKey('broadcast');
    if (this.size === 1) return;
    await this.guard(async () => {
      if (this.rank === root) {
        await Promise.all(
          this.ranks.map((world, r) =>
            r === root ? null : this.transport.send(world, key, descriptor, bytesOf(data)),
          ),
        );
      } else {
        await this.receiveInto(root, key, descriptor, data, 'copy');
      }
    });
  }

  async barrier(): Promise<void> {
    await this.allReduce(new Float32Array(1));
  }

  /** Point-to-point: messages between a pair arrive in the order they were sent. */
  async send(data: Elements, dst: number, descriptor: string = dtypeOf(data)): Promise<void> {
    const key = this.pairKey(this.rank, dst);
    await this.guard(() => this.transport.send(this.ranks[dst]!, key, descriptor, bytesOf(data)));
  }

  async recv(data: Elements, src: number, descriptor: string = dtypeOf(data)): Promise<void> {
    const key = this.pairKey(src, this.rank);
    await this.guard(() => this.receiveInto(src, key, descriptor, data, 'copy'));
  }

  /** Marks this rank failed on every rank (the cause is then what every rank reports). */
  abort(cause: string): void {
    this.raise(new RankFailure(this.transport.rank, cause));
  }

  async close(): Promise<void> {
    await this.hooks.onClose?.();
    await this.transport.close();
  }

  // ---- rings ------------------------------------------------------------------------------------

  /**
   * Posts every receive of a ring phase at once, so data from a peer that is steps ahead lands
   * (folded or copied into place) as it comes, not in a staging buffer to be combined later. Safe:
   * step s receives into a segment this rank sends only at step s + 1, after awaiting that receive;
   * and an all-gather copy into a segment comes only after every rank's part of its reduction,
   * this rank's last send of it included, was read. Their timeouts run from now.
   */
  private postRing(
    phase: RingPhase,
    data: Elements,
    segments: Array<[number, number]>,
    key: string,
    dtype: string,
    combine: Combine,
  ): Array<Promise<void>> {
    const n = this.size;
    return Array.from({ length: n - 1 }, (_, step) => {
      const [r0, r1] = segments[mod(this.rank - step - SEND_SHIFT[phase] - 1, n)]!;
      const received = this.receiveInto(
        mod(this.rank - 1, n),
        `${key}/${phase}${step}`,
        dtype,
        data.subarray(r0, r1),
        combine,
      );
      // A failure rejects every later step too; the step being awaited reports it.
      received.catch(() => {});
      return received;
    });
  }

  /**
   * Runs a ring phase whose receives postRing posted: each step sends one segment to the next rank
   * once the previous step's receive has landed. After 'rs' (reduce-scatter) rank r holds the
   * reduction of segment r; 'ag' (all-gather) starts from that and ends with every segment.
   */
  private async runRing(
    phase: RingPhase,
    data: Elements,
    segments: Array<[number, number]>,
    key: string,
    dtype: string,
    received: Array<Promise<void>>,
  ): Promise<void> {
    const n = this.size;
    const next = this.ranks[(this.rank + 1) % n]!;
    for (let step = 0; step < n - 1; step++) {
      const [s0, s1] = segments[mod(this.rank - step - SEND_SHIFT[phase], n)]!;
      const sent = this.transport.send(next, `${key}/${phase}${step}`, dtype, bytesOf(data.subarray(s0, s1)));
      await Promise.all([sent, received[step]]);
    }
  }

  /** Receives from group rank src into target, combining each chunk as it lands. */
  private receiveInto(
    src: number,
    key: string,
    descriptor: string,
    target: Elements,
    combine: Combine,
  ): Promise<void> {
    return this.transport.recv(this.ranks[src]!, key, descriptor, target, combine);
  }

  // ---- bookkeeping ------------------------------------------------------------------------------

  private nextKey(operation: string): string {
    if (this.transport.failure) throw this.transport.failure;
    return `${this.name}/${operation}#${this.sequence++}`;
  }

  private taggedKey(tag: string): string {
    if (this.transport.failure) throw this.transport.failure;
    return `${this.name}/${tag}`;
  }

  private pairKey(src: number, dst: number): string {
    for (const [r, what] of [
      [src, 'source'],
      [dst, 'destination'],
    ] as const)
      if (!Number.isInteger(r) || r < 0 || r >= this.size || src === dst)
        throw new ParallelError(
          `group '${this.name}': ${what} rank ${r} must be another rank in 0..${this.size - 1} (this is rank ${this.rank})`,
        );
    const pair = `${src}->${dst}`;
    const count = this.pairCounters.get(pair) ?? 0;
    this.pairCounters.set(pair, count + 1);
    return `${this.name}/p2p/${pair}#${count}`;
  }

  private checkPair(small: Elements, large: Elements, op: string, largeName: string): void {
    if (dtypeOf(small) !== dtypeOf(large) || large.length !== small.length * this.size)
      throw new ParallelError(
        `group '${this.name}': ${op} ${largeName} must be ${dtypeOf(small)} with ${small.length * this.size} elements (${this.size} ranks x ${small.length}), got ${dtypeOf(large)} with ${large.length}`,
      );
  }

  /** Runs a collective; its first error becomes this group's failure, spread to every rank. */
  private async guard(run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      const failure =
        this.transport.failure ??
        (error instanceof RankFailure
          ? error
          : new RankFailure(this.transport.rank, (error as Error).message));
      this.raise(failure);
      throw failure;
    }
  }

  private raise(failure: RankFailure): void {
    if (this.transport.failure) return;
    this.transport.fail(failure);
    this.hooks.onFailure?.(failure);
  }
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

/** n near-equal [start, end) segments of length elements. */
function split(length: number, n: number): Array<[number, number]> {
  const base = Math.floor(length / n);
  const extra = length % n;
  const out: Array<[number, number]> = [];
  let start = 0;
  for (let r = 0; r < n; r++) {
    const end = start + base + (r < extra ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

function checkOp(op: ReduceOp, where: string): void {
  if (!REDUCE_OPS.includes(op))
    throw new ParallelError(
      `${where}: unknown reduce op '${op as string}'; valid ops: ${REDUCE_OPS.join(', ')}`,
    );
}
