// The `nccl` process group: NCCL communicators over the addon (csrc/nccl.cpp dlopens libnccl.so.2,
// or GRIN_NCCL_PATH). Rank 0 makes the unique id and hands it out through the run's Store (any
// object with set/get, such as @grin-moe/parallel's world.store); collectives act on contiguous cuda
// tensors and are enqueued on the device's stream, so they need no sync around the kernels.
// Test: bash tools/device/run-parallel.sh on a GPU (world size 1, next to torch.distributed).
import type { DType, Tensor } from '@grin-moe/tensor';
import { addr, dtypeCode, native } from './backend.js';

type N = number;
interface NcclAddon {
  ncclLoad(): { version?: N; path?: string; error?: string };
  ncclUniqueId(id: Uint8Array): void;
  ncclCommInit(device: N, ranks: N, id: Uint8Array, rank: N): N;
  ncclCommFree(comm: N, abort: N): void;
  ncclAllReduce(comm: N, dtype: N, op: N, send: N, recv: N, count: N): void;
  ncclBroadcast(comm: N, dtype: N, root: N, send: N, recv: N, count: N): void;
  ncclAllGather(comm: N, dtype: N, send: N, recv: N, sendCount: N): void;
  ncclReduceScatter(comm: N, dtype: N, op: N, send: N, recv: N, recvCount: N): void;
  ncclSendRecv(
    comm: N,
    dtype: N,
    send: N,
    sendCount: N,
    sendPeer: N,
    recv: N,
    recvCount: N,
    recvPeer: N,
  ): void;
}

/** What ncclGroup needs of the rendezvous Store. */
export interface UniqueIdStore {
  set(key: string, value: Uint8Array): Promise<void>;
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
}

export type NcclReduceOp = 'sum' | 'prod' | 'max' | 'min' | 'avg';
const OPS: Record<NcclReduceOp, number> = { sum: 0, prod: 1, max: 2, min: 3, avg: 4 };

export type NcclStatus =
  | { available: true; version: string; path: string }
  | { available: false; reason: string };

function addon(): NcclAddon {
  return native() as unknown as NcclAddon;
}

/** Whether NCCL loads here, its version and path, or why not. */
export function ncclStatus(): NcclStatus {
  let loaded: ReturnType<NcclAddon['ncclLoad']>;
  try {
    loaded = addon().ncclLoad();
  } catch (error) {
    return { available: false, reason: (error as Error).message };
  }
  if (loaded.error || loaded.version === undefined)
    return { available: false, reason: loaded.error ?? 'no version' };
  return { available: true, version: versionString(loaded.version), path: loaded.path ?? '' };
}

/** NCCL_VERSION_CODE: major*10000 + minor*100 + patch since 2.9, major*1000 + minor*100 + patch before. */
function versionString(code: number): string {
  const [major, rest] =
    code >= 10000 ? [Math.floor(code / 10000), code % 10000] : [Math.floor(code / 1000), code % 1000];
  return `${major}.${Math.floor(rest / 100)}.${rest % 100}`;
}

export interface NcclGroupOptions {
  store: UniqueIdStore;
  rank: number;
  size: number;
  /** 'cuda', 'cuda:N' or N (default: LOCAL_RANK's device is the caller's choice; here 0). */
  device?: string | number;
  /** Names this communicator's unique id in the Store (several groups: one name each). */
  name?: string;
  timeoutMs?: number;
}

/** Joins an NCCL communicator of `size` ranks; blocks until all have joined. */
export async function ncclGroup(options: NcclGroupOptions): Promise<NcclGroup> {
  const status = ncclStatus();
  if (!status.available) throw new Error(`ncclGroup: ${status.reason}`);
  const { rank, size } = options;
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(rank) || rank < 0 || rank >= size)
    throw new RangeError(`ncclGroup: rank ${rank} of ${size} is not a rank of the group (0..size-1)`);
  const device =
    typeof options.device === 'number'
      ? options.device
      : Number((options.device ?? 'cuda:0').split(':')[1] ?? 0);
  const key = `nccl/${options.name ?? 'world'}/unique-id`;
  const id = new Uint8Array(128);
  if (rank === 0) {
    addon().ncclUniqueId(id);
    await options.store.set(key, id);
  } else {
    const got = await options.store.get(key, options.timeoutMs);
    if (got.length !== 128)
      throw new Error(
        `ncclGroup: the Store's '${key}' holds ${got.length} bytes, expected a 128-byte ncclUniqueId`,
      );
    id.set(got);
  }
  const comm = addon().ncclCommInit(device, size, id, rank);
  return new NcclGroup(comm, rank, size, device, status.version);
}

export class NcclGroup {
  private open = true;

  constructor(
    private readonly comm: number,
    readonly rank: number,
    readonly size: number,
    readonly device: number,
    readonly version: string,
  ) {}

  /** In place: every rank ends with the reduction of every rank's `t`. */
  allReduce(t: Tensor, op: NcclReduceOp = 'sum'): void {
    const code = this.check('allReduce', t, op);
    addon().ncclAllReduce(this.comm, code, OPS[op], addr(t), addr(t), t.size);
  }

  /** In place: every rank's `t` becomes rank `root`'s. */
  broadcast(t: Tensor, root: number): void {
    const code = this.check('broadcast', t);
    this.checkPeer('broadcast', root);
    addon().ncclBroadcast(this.comm, code, root, addr(t), addr(t), t.size);
  }

  /** `output` (size x input's elements) holds every rank's `input`, in rank order. */
  allGather(input: Tensor, output: Tensor): void {
    const code = this.check('allGather', input);
    this.checkPair('allGather', input, output, input.size * this.size, 'size x input');
    addon().ncclAllGather(this.comm, code, addr(input), addr(output), input.size);
  }

  /** `output` is this rank's slice (in rank order) of the reduction of every rank's `input`. */
  reduceScatter(input: Tensor, output: Tensor, op: NcclReduceOp = 'sum'): void {
    const code = this.check('reduceScatter', input, op);
    this.checkPair('reduceScatter', output, input, output.size * this.size, 'size x output');
    addon().ncclReduceScatter(this.comm, code, OPS[op], addr(input), addr(output), output.size);
  }

  send(t: Tensor, peer: number): void {
    const code = this.check('send', t);
    this.checkPeer('send', peer);
    addon().ncclSendRecv(this.comm, code, addr(t), t.size, peer, 0, 0, 0);
  }

  recv(t: Tensor, peer: number): void {
    const code = this.check('recv', t);
    this.checkPeer('recv', peer);
    addon().ncclSendRecv(this.comm, code, 0, 0, 0, addr(t), t.size, peer);
  }

  /** Sends `send` to `sendPeer` and receives `recv` from `recvPeer` in one NCCL group (self included). */
  sendRecv(send: Tensor, sendPeer: number, recv: Tensor, recvPeer: number): void {
    const code = this.check('sendRecv', send);
    this.check('sendRecv', recv);
    this.checkPeer('sendRecv', sendPeer);
    this.checkPeer('sendRecv', recvPeer);
    addon().ncclSendRecv(this.comm, code, addr(send), send.size, sendPeer, addr(recv), recv.size, recvPeer);
  }

  /** Frees the communicator; `abort` does not wait for queued collectives (after a peer failed). */
  destroy(abort = false): void {
    if (!this.open) return;
    this.open = false;
    addon().ncclCommFree(this.comm, abort ? 1 : 0);
  }

  private check(what: string, t: Tensor, op?: NcclReduceOp): number {
    if (!this.open) throw new Error(`nccl ${what}: the group was destroyed`);
    if (!t.device.startsWith('cuda') || Number(t.device.split(':')[1] ?? 0) !== this.device)
      throw new Error(
        `nccl ${what}: ${t.describe()} is on ${t.device}; this group's tensors live on cuda:${this.device}`,
      );
    if (!t.isContiguous())
      throw new Error(`nccl ${what}: ${t.describe()} is not contiguous; call contiguous() first`);
    if (op !== undefined && !(op in OPS))
      throw new Error(`nccl ${what}: unknown op '${op}'; valid: ${Object.keys(OPS).join(', ')}`);
    if (op === 'avg' && Number(this.version.split('.')[1]) < 10 && this.version.startsWith('2.'))
      throw new Error(
        `nccl ${what}: 'avg' needs NCCL 2.10 or later (loaded ${this.version}); use 'sum' and divide`,
      );
    return dtypeCode(t.dtype as DType, `nccl ${what}`);
  }

  private checkPeer(what: string, peer: number): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.size)
      throw new RangeError(`nccl ${what}: rank ${peer} is not in the group (0..${this.size - 1})`);
  }

  private checkPair(what: string, small: Tensor, large: Tensor, expected: number, rule: string): void {
    if (large.size !== expected || large.dtype !== small.dtype)
      throw new Error(
        `nccl ${what}: ${large.describe()} must hold ${expected} ${small.dtype} elements (${rule}, ${this.size} ranks)`,
      );
  }
}
