// The side stream's bookkeeping (src/side-stream.ts) on the CPU, against an event log: which
// fences the main stream waits for, when a fenced free reaches the allocator, that events are
// pooled, and what is refused inside a side region. The addon is replaced by a recorder of the
// calls it would get (events complete when the test says so); the GPU case tests/cases/
// side-stream.ts runs the real streams. Run: cd packages/kernels-cuda && npx vitest run tests/side-stream-bookkeeping.test.ts
import { Storage, type Tensor } from '@grin-moe/tensor';
import { beforeEach, describe, expect, it } from 'vitest';
import type { NativeAddon } from '../src/native.js';
import {
  beforeAllocate,
  beforeHostRead,
  bindSideStream,
  deferFree,
  onSideStream,
  orderKernel,
  pendingFreeCount,
  reclaimAll,
} from '../src/side-stream.js';

/** What the addon was asked, and which events have completed. */
class Recorder {
  log: string[] = [];
  created = 0;
  done = new Set<number>();
  addon = {
    fenceCreate: () => ++this.created,
    sideBegin: () => void this.log.push('begin'),
    sideEnd: () => void this.log.push('end'),
    sideRecord: (_d: number, e: number) => {
      this.done.delete(e); // a new record is pending again
      this.log.push(`record ${e}`);
    },
    mainWait: (_d: number, e: number) => void this.log.push(`wait ${e}`),
    fenceDone: (e: number) => (this.done.has(e) ? 1 : 0),
    fenceSynchronize: (e: number) => {
      this.done.add(e);
      this.log.push(`sync ${e}`);
    },
    free: (_d: number, ptr: number) => void this.log.push(`free ${ptr}`),
  };
}

let rec: Recorder;
let nextPtr = 100;
/** The events recorded on the side stream so far (pooled events keep their numbers across tests). */
const recorded = () => rec.log.filter((l) => l.startsWith('record')).map((l) => Number(l.split(' ')[1]));
const tensor = () =>
  ({ storage: new Storage({} as never, 'f32', 1, { ptr: nextPtr++, device: 0 }) }) as unknown as Tensor;
const data = (t: Tensor) => t.storage.data as { ptr: number; device: number };

beforeEach(() => {
  rec = new Recorder();
  bindSideStream(() => rec.addon as unknown as NativeAddon);
  reclaimAll();
  rec.log = [];
});

describe('side stream bookkeeping', () => {
  it('the main stream waits once for the fence of each touched storage, only for what it uses', () => {
    const [p0, p1, untouched] = [tensor(), tensor(), tensor()];
    onSideStream(0, (fence) => {
      orderKernel([p0]);
      fence();
      orderKernel([p1]);
      fence();
    });
    const [e0, e1] = recorded();
    expect(rec.log).toEqual(['begin', `record ${e0}`, `record ${e1}`, 'end']);
    expect(e0).not.toBe(e1);
    rec.log = [];
    orderKernel([p1, untouched]);
    orderKernel([p1]); // already waited for
    beforeHostRead(data(p0));
    expect(rec.log).toEqual([`wait ${e1}`, `wait ${e0}`]);
  });

  it('a fenced storage freed on the main stream reaches the allocator once its fence has passed', () => {
    const grad = tensor();
    onSideStream(0, (fence) => {
      orderKernel([grad]);
      fence();
    });
    expect(deferFree(data(grad))).toBe(true);
    expect(pendingFreeCount()).toBe(1);
    beforeAllocate(); // fence 1 still pending: nothing freed
    expect(rec.log.filter((l) => l.startsWith('free'))).toEqual([]);
    rec.done.add(recorded()[0]!);
    beforeAllocate();
    expect(rec.log.at(-1)).toBe(`free ${data(grad).ptr}`);
    expect(pendingFreeCount()).toBe(0);
    expect(deferFree(data(tensor()))).toBe(false); // never touched: freed at once by the backend
  });

  it('a storage touched and freed inside the region is freed after the next fence; reclaimAll waits', () => {
    const scale = tensor();
    onSideStream(0, (fence) => {
      orderKernel([scale]);
      expect(deferFree(data(scale))).toBe(true);
      fence();
    });
    expect(pendingFreeCount()).toBe(1);
    reclaimAll();
    expect(rec.log.slice(-2)).toEqual([`sync ${recorded()[0]}`, `free ${data(scale).ptr}`]);
  });

  it('events are pooled: a hundred steps over three parameters record a handful of events', () => {
    const params = [tensor(), tensor(), tensor()];
    for (let step = 0; step < 100; step++) {
      onSideStream(0, (fence) => {
        for (const p of params) {
          orderKernel([p]);
          fence();
        }
      });
      orderKernel(params); // the next forward reaches them all
      for (const e of recorded()) rec.done.add(e);
    }
    // a fence not handed back would need a new event every time: 300 of them
    expect(new Set(recorded()).size).toBeLessThanOrEqual(4);
  });

  it('refuses allocations, host reads and nesting inside a region, and leaves the region on a throw', () => {
    expect(() =>
      onSideStream(0, () => {
        expect(() => beforeAllocate()).toThrow('cuda: an allocation inside onSideStream');
        expect(() => beforeHostRead(data(tensor()))).toThrow('cuda: a host read inside onSideStream');
        onSideStream(0, () => {});
      }),
    ).toThrow('onSideStream: already inside onSideStream (they do not nest)');
    expect(rec.log.at(-1)).toBe('end');
    expect(() => beforeAllocate()).not.toThrow(); // the region is over
  });
});
