// The side stream: an optimizer step enqueued there runs while the main stream goes on with the
// next step's forward. The forward is GEMM-bound and the step bandwidth-bound, so the two overlap
// instead of adding up. Order is kept with fences (CUDA events recorded on the side stream):
// - every storage a side kernel touched carries the fence recorded after it; the main stream
//   waits for that fence before its first kernel that reads or writes the storage (the backend's
//   beforeKernel hook), and before a host read of it;
// - a storage freed while it carries a fence goes back to the allocator only once the fence has
//   passed (the caching allocator hands blocks straight to the main stream, which must not reuse
//   a gradient the side stream still reads).
// Nothing may be allocated or read back on the host inside onSideStream.
// Test: tests/cases/side-stream.ts (GPU), against the same steps on the main stream.
import type { Storage } from '@grin-moe/tensor';
import type { CudaData } from './backend.js';
import type { NativeAddon } from './native.js';

interface Fence {
  event: number;
  device: number;
  /** storages and deferred frees that wait on it; at 0 the event goes back to the pool */
  refs: number;
}
type Fenced = CudaData & { fence?: Fence };

interface SideRegion {
  device: number;
  touched: Fenced[];
  frees: Fenced[];
}
let region: SideRegion | null = null;
const pool: Fence[] = [];
const pendingFrees: Array<{ ptr: number; device: number; fence: Fence }> = [];
let addon: () => NativeAddon;

/** Wires in the addon (backend.ts: the module graph stays acyclic). */
export function bindSideStream(native: () => NativeAddon): void {
  addon = native;
}

function acquire(device: number): Fence {
  const i = pool.findIndex((f) => f.device === device);
  if (i >= 0) return pool.splice(i, 1)[0]!;
  return { event: addon().fenceCreate(device), device, refs: 0 };
}
function release(fence: Fence): void {
  if (--fence.refs === 0) pool.push(fence);
}
function hold(data: Fenced, fence: Fence): void {
  if (data.fence === fence) return;
  if (data.fence) release(data.fence);
  data.fence = fence;
  fence.refs++;
}

/**
 * Runs `update` with every kernel it launches on `device`'s side stream, after everything enqueued
 * on the main stream so far. `fence()` marks the storages touched since the last fence as ready
 * once the side stream gets there (call it after each parameter's update: the next forward then
 * waits only for the parameters it reaches). The main stream goes on at once.
 */
export function onSideStream(device: number, update: (fence: () => void) => void): void {
  if (region) throw new Error('onSideStream: already inside onSideStream (they do not nest)');
  addon().sideBegin(device);
  const here: SideRegion = { device, touched: [], frees: [] };
  region = here;
  const fence = () => {
    if (!here.touched.length && !here.frees.length) return;
    const f = acquire(device);
    addon().sideRecord(device, f.event);
    f.refs++; // held while it is being handed out
    for (const data of here.touched) hold(data, f);
    for (const data of here.frees) {
      f.refs++;
      pendingFrees.push({ ptr: data.ptr, device: data.device, fence: f });
    }
    here.touched = [];
    here.frees = [];
    release(f);
  };
  try {
    update(fence);
  } finally {
    fence();
    addon().sideEnd(device);
    region = null;
  }
}

/** The backend's beforeKernel: inside a side region, note what it touches; outside, wait for fences. */
export function orderKernel(inputs: readonly { storage: Storage }[]): void {
  if (region) {
    for (const t of inputs) region.touched.push(t.storage.data as Fenced);
    return;
  }
  for (const t of inputs) {
    const data = t.storage.data as Fenced;
    if (data.fence) awaitFence(data);
  }
}

/** The main stream waits for the storage's fence (no host sync). */
export function awaitFence(data: Fenced): void {
  const fence = data.fence;
  if (!fence) return;
  addon().mainWait(fence.device, fence.event);
  data.fence = undefined;
  release(fence);
}

/** Before a host read: nothing can be read back inside a side region; fenced storages wait. */
export function beforeHostRead(data: Fenced): void {
  if (region)
    throw new Error('cuda: a host read inside onSideStream (the side stream cannot be read back there)');
  awaitFence(data);
}

/** Before an allocation: inside a side region there are none; outside, fenced frees that passed are reclaimed. */
export function beforeAllocate(): void {
  if (region) throw new Error('cuda: an allocation inside onSideStream (its kernels must work in place)');
  while (pendingFrees.length && addon().fenceDone(pendingFrees[0]!.fence.event)) {
    const { ptr, device, fence } = pendingFrees.shift()!;
    addon().free(device, ptr);
    release(fence);
  }
}

/** free(): true when the block was deferred (its fence has not been seen to pass). */
export function deferFree(data: Fenced): boolean {
  if (region?.touched.includes(data)) {
    region.frees.push(data);
    return true;
  }
  const fence = data.fence;
  if (!fence) return false;
  data.fence = undefined; // the pending entry holds the reference now
  pendingFrees.push({ ptr: data.ptr, device: data.device, fence });
  return true;
}

/** Waits for every deferred free's fence and frees them (a sync, OOM retries, empty cache). */
export function reclaimAll(): void {
  while (pendingFrees.length) {
    const { ptr, device, fence } = pendingFrees.shift()!;
    addon().fenceSynchronize(fence.event);
    addon().free(device, ptr);
    release(fence);
  }
}

/** Deferred frees not yet handed back (tests). */
export function pendingFreeCount(): number {
  return pendingFrees.length;
}
