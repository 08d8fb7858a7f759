// The Tensor handle: shape, strides and offset over a reference-counted device Storage.
// Views (reshape, permute, expand, slice) share storage and are recorded for autograd; values
// reach the host only through toArray()/item(), the one sync point of the contract.
// Test: cd packages/tensor && npx vitest run src/core

import { backward as runBackward } from '../autograd/engine.js';
import { noGrad } from '../autograd/mode.js';
import type { Node } from '../autograd/node.js';
import { recordView } from '../autograd/record.js';
import { type Backend, backendOf, type Storage } from './backend.js';
import { type DType, type HostArray, isFloat } from './dtype.js';
import { hooks } from './hooks.js';
import { finalizer, releaseStorage, retainStorage, TENSOR_BRAND, trackInScope } from './memory.js';
import {
  checkShape,
  contiguousStrides,
  formatShape,
  normalizeAxis,
  numel,
  type Shape,
  shapesEqual,
} from './shape.js';

export class Tensor {
  readonly [TENSOR_BRAND] = true;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly size: number;
  requiresGrad = false;
  /** Gradient accumulated by backward() into a leaf that requires grad. */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (null for leaves and outside autograd). */
  gradNode: Node | null = null;
  outputIndex = 0;
  name: string | undefined;
  private disposedFlag = false;

  constructor(
    readonly storage: Storage,
    shape: Shape,
    strides: Shape,
    readonly offset: number,
    readonly device: string,
    options: { track?: boolean } = {},
  ) {
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze([...strides]);
    this.size = numel(shape);
    retainStorage(storage);
    finalizer.register(this, storage, this);
    if (options.track !== false) trackInScope(this);
  }

  get dtype(): DType {
    return this.storage.dtype;
  }
  get rank(): number {
    return this.shape.length;
  }
  get backend(): Backend {
    return this.storage.backend;
  }
  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** A second handle to the same view; it owns one reference to the storage. */
  alias(options: { track?: boolean } = {}): Tensor {
    this.assertAlive('alias');
    return new Tensor(this.storage, this.shape, this.strides, this.offset, this.device, options);
  }

  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    finalizer.unregister(this);
    releaseStorage(this.storage);
    this.grad?.dispose();
    this.grad = null;
    this.gradNode = null;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  assertAlive(what: string): void {
    if (this.disposedFlag) throw new Error(`${what}: tensor ${this.describe()} was disposed`);
  }

  describe(): string {
    return `${this.name ? `'${this.name}' ` : ''}${this.dtype}${formatShape(this.shape)} on ${this.device}`;
  }
  toString(): string {
    return `Tensor(${this.describe()})`;
  }

  isContiguous(): boolean {
    let expected = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const d = this.shape[i]!;
      if (d !== 1 && this.strides[i] !== expected) return false;
      expected *= d;
    }
    return true;
  }

  /** Copies the values to a new host array in row-major order. Synchronises with the device. */
  toArray(): HostArray {
    this.assertAlive('toArray');
    if (this.isContiguous()) return this.backend.toHost(this.storage, this.offset, this.size);
    const dense = noGrad(() => contiguous(this));
    try {
      return dense.backend.toHost(dense.storage, dense.offset, dense.size);
    } finally {
      dense.dispose();
    }
  }

  /** Nested JS arrays of numbers, for printing and small tests. */
  toList(): unknown {
    const flat = Array.from(this.toArray() as ArrayLike<number>);
    const build = (dim: number, start: number): unknown => {
      if (dim === this.rank) return flat[start];
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, start + i * step));
    };
    return build(0, 0);
  }

  item(): number {
    if (this.size !== 1)
      throw new RangeError(`item(): tensor ${this.describe()} has ${this.size} elements, expected 1`);
    return (this.toArray() as ArrayLike<number>)[0]!;
  }

  /** Marks a leaf as a parameter whose gradient backward() accumulates. */
  setRequiresGrad(flag = true): this {
    if (flag && !isFloat(this.dtype))
      throw new TypeError(`setRequiresGrad: ${this.describe()} is not a float tensor`);
    if (this.gradNode && !flag)
      throw new Error('setRequiresGrad(false): only leaves can stop requiring grad; use detach()');
    this.requiresGrad = flag;
    return this;
  }

  /** The same values as a new handle, still connected to autograd (an identity op). */
  identity(): Tensor {
    return recordView('reshape', this, this.alias(), { shape: [...this.shape] });
  }

  /** Same storage, cut from the autograd graph. */
  detach(): Tensor {
    return this.alias();
  }

  backward(gradient?: Tensor, options?: { retainGraph?: boolean }): void {
    runBackward(this, gradient, options);
  }

  // ---- views -------------------------------------------------------------------------------

  reshape(shape: number[]): Tensor {
    const target = inferShape(this.shape, shape);
    if (shapesEqual(target, this.shape)) return recordView('reshape', this, this.alias(), { shape: target });
    const strides = viewStrides(this, target);
    if (strides) {
      return recordView('reshape', this, this.withLayout(target, strides, this.offset), { shape: target });
    }
    const dense = contiguous(this);
    const out = recordView(
      'reshape',
      dense,
      dense.withLayout(target, contiguousStrides(target), dense.offset),
      {
        shape: target,
      },
    );
    dense.dispose();
    return out;
  }

  flatten(startAxis = 0, endAxis = -1): Tensor {
    const s = normalizeAxis('flatten', startAxis, this.rank);
    const e = normalizeAxis('flatten', endAxis, this.rank);
    return this.reshape([
      ...this.shape.slice(0, s),
      numel(this.shape.slice(s, e + 1)),
      ...this.shape.slice(e + 1),
    ]);
  }

  unsqueeze(axis: number): Tensor {
    const a = normalizeAxis('unsqueeze', axis, this.rank + 1);
    const shape = [...this.shape];
    shape.splice(a, 0, 1);
    return this.reshape(shape);
  }

  squeeze(axis: number): Tensor {
    const a = normalizeAxis('squeeze', axis, this.rank);
    if (this.shape[a] !== 1)
      throw new RangeError(`squeeze: axis ${axis} of ${this.describe()} has size ${this.shape[a]}, not 1`);
    return this.reshape(this.shape.filter((_, i) => i !== a));
  }

  permute(dims: number[]): Tensor {
    if (
      dims.length !== this.rank ||
      new Set(dims.map((d) => normalizeAxis('permute', d, this.rank))).size !== this.rank
    ) {
      throw new RangeError(
        `permute: [${dims}] is not a permutation of the ${this.rank} axes of ${this.describe()}`,
      );
    }
    const ds = dims.map((d) => normalizeAxis('permute', d, this.rank));
    const view = this.withLayout(
      ds.map((d) => this.shape[d]!),
      ds.map((d) => this.strides[d]!),
      this.offset,
    );
    return recordView('permute', this, view, { dims: ds });
  }

  transpose(axisA = -2, axisB = -1): Tensor {
    const dims = [...Array(this.rank).keys()];
    const a = normalizeAxis('transpose', axisA, this.rank);
    const b = normalizeAxis('transpose', axisB, this.rank);
    [dims[a], dims[b]] = [dims[b]!, dims[a]!];
    return this.permute(dims);
  }

  /** Broadcasts size-1 axes (and new leading axes) to `shape` without copying. */
  expand(shape: number[]): Tensor {
    if (shape.length < this.rank)
      throw new RangeError(`expand: cannot expand ${this.describe()} to fewer axes ${formatShape(shape)}`);
    const lead = shape.length - this.rank;
    const strides = shape.map((d, i) => {
      if (i < lead) return 0;
      const own = this.shape[i - lead]!;
      if (own === d) return this.strides[i - lead]!;
      if (own === 1) return 0;
      throw new RangeError(`expand: cannot expand ${this.describe()} to ${formatShape(shape)} (axis ${i})`);
    });
    if (shapesEqual(shape, this.shape))
      return recordView('expand', this, this.alias(), { shape: [...shape] });
    return recordView('expand', this, this.withLayout(shape, strides, this.offset), { shape: [...shape] });
  }

  /**
   * Basic slicing: one [start, end, step?] per leading axis (null keeps the axis whole).
   * Negative start/end count from the end, as in Python.
   */
  slice(...ranges: Array<[number, number?, number?] | null>): Tensor {
    if (ranges.length > this.rank)
      throw new RangeError(`slice: ${ranges.length} ranges for ${this.describe()}`);
    const starts: number[] = [];
    const ends: number[] = [];
    const steps: number[] = [];
    this.shape.forEach((d, i) => {
      const r = ranges[i];
      const step = r?.[2] ?? 1;
      if (!Number.isInteger(step) || step < 1)
        throw new RangeError(`slice: step must be a positive integer, got ${step}`);
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      const start = r ? clamp(r[0]) : 0;
      const end = r && r[1] !== undefined ? clamp(r[1]) : d;
      starts.push(start);
      ends.push(Math.max(start, end));
      steps.push(step);
    });
    const shape = starts.map((s, i) => Math.ceil((ends[i]! - s) / steps[i]!));
    const offset = this.offset + starts.reduce((acc, s, i) => acc + s * this.strides[i]!, 0);
    const strides = this.strides.map((s, i) => s * steps[i]!);
    return recordView('slice', this, this.withLayout(shape, strides, offset), { starts, ends, steps });
  }

  /** Selects index i along axis and drops that axis. */
  select(axis: number, index: number): Tensor {
    const a = normalizeAxis('select', axis, this.rank);
    const d = this.shape[a]!;
    const i = index < 0 ? index + d : index;
    if (i < 0 || i >= d)
      throw new RangeError(`select: index ${index} out of range for axis ${axis} of ${this.describe()}`);
    const ranges: Array<[number, number] | null> = this.shape.map(() => null);
    ranges[a] = [i, i + 1];
    const sliced = this.slice(...ranges);
    const out = sliced.squeeze(a);
    sliced.dispose();
    return out;
  }

  /** An untracked-by-autograd handle with a different layout over the same storage. */
  withLayout(shape: Shape, strides: Shape, offset: number): Tensor {
    this.assertAlive('view');
    return new Tensor(this.storage, checkShape('view', shape), strides, offset, this.device);
  }
}

/** Infers one -1 and checks that the element count matches. */
function inferShape(from: Shape, shape: number[]): number[] {
  const total = numel(from);
  const unknown = shape.indexOf(-1);
  const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = [...shape];
  if (unknown !== -1) {
    if (shape.lastIndexOf(-1) !== unknown || known === 0 || total % known !== 0) {
      throw new RangeError(`reshape: cannot reshape ${formatShape(from)} into ${formatShape(shape)}`);
    }
    out[unknown] = total / known;
  }
  if (numel(out) !== total || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(
      `reshape: cannot reshape ${formatShape(from)} (${total} elements) into ${formatShape(shape)}`,
    );
  }
  return out;
}

/** Strides that view `t` as `shape` without a copy, or null when its layout does not allow it. */
function viewStrides(t: Tensor, shape: number[]): number[] | null {
  if (t.isContiguous()) return contiguousStrides(shape);
  // Merge the old axes into contiguous chunks, then split each chunk over the new axes.
  const oldShape = t.shape.filter((d) => d !== 1);
  const oldStrides = t.strides.filter((_, i) => t.shape[i] !== 1);
  const strides = new Array<number>(shape.length).fill(0);
  let oi = 0;
  let ni = 0;
  while (ni < shape.length && shape[ni] === 1) strides[ni++] = 1;
  while (oi < oldShape.length) {
    let chunk = oldShape[oi]!;
    let lastStride = oldStrides[oi]!;
    while (oi + 1 < oldShape.length && oldStrides[oi] === oldStrides[oi + 1]! * oldShape[oi + 1]!) {
      oi++;
      chunk *= oldShape[oi]!;
      lastStride = oldStrides[oi]!;
    }
    oi++;
    let acc = 1;
    const startNi = ni;
    while (ni < shape.length && acc < chunk) acc *= shape[ni++]!;
    if (acc !== chunk) return null;
    let s = lastStride;
    for (let j = ni - 1; j >= startNi; j--) {
      strides[j] = s;
      s *= shape[j]!;
    }
    while (ni < shape.length && shape[ni] === 1) strides[ni++] = 1;
  }
  return ni === shape.length ? strides : null;
}

export function contiguous(t: Tensor): Tensor {
  return hooks.contiguous(t);
}

export function isTensor(value: unknown): value is Tensor {
  return value instanceof Tensor;
}

export { backendOf };
