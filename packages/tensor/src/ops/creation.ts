// Creating tensors: from JS data, constants, ranges and random draws. Default device 'cpu',
// default dtype f32; host data is uploaded once.
// Test: cd packages/tensor && npx vitest run src/ops
import { backendOf } from '../core/backend.js';
import { assertDType, type DType, type HostArray } from '../core/dtype.js';
import { contiguousStrides, formatShape, numel } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';
import { runKernel } from './dispatch.js';

export interface CreateOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

type Nested = number | boolean | Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let level: Nested = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0] as Nested;
  }
  return shape;
}

/** tensor([[1, 2], [3, 4]]) or tensor(Float32Array, { shape }) */
export function tensor(
  data: Nested | HostArray | ArrayLike<number>,
  options: CreateOptions & { shape?: number[] } = {},
): Tensor {
  const isTyped = ArrayBuffer.isView(data);
  const dtype = assertDType(options.dtype ?? defaultDType(data), 'tensor');
  let flat: ArrayLike<number>;
  let shape: number[];
  if (isTyped || (typeof data === 'object' && !Array.isArray(data))) {
    flat = data as ArrayLike<number>;
    shape = options.shape ?? [flat.length];
  } else {
    shape = options.shape ?? inferShape(data as Nested);
    flat = (Array.isArray(data) ? (data as unknown[]).flat(Number.POSITIVE_INFINITY) : [data]).map(Number);
  }
  if (numel(shape) !== flat.length) {
    throw new RangeError(`tensor: ${flat.length} values do not fill shape ${formatShape(shape)}`);
  }
  return fromHost(flat, shape, dtype, options);
}

function defaultDType(data: unknown): DType {
  if (data instanceof Float64Array) return 'f64';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Uint8Array) return 'bool';
  if (data instanceof Uint16Array) return 'bf16';
  return 'f32';
}

function fromHost(flat: ArrayLike<number>, shape: number[], dtype: DType, options: CreateOptions): Tensor {
  const device = options.device ?? 'cpu';
  const backend = backendOf(device);
  const host = toHostArray(flat, dtype);
  const t = new Tensor(backend.fromHost(host, dtype, device), shape, contiguousStrides(shape), 0, device);
  if (options.requiresGrad) t.setRequiresGrad();
  return t;
}

function toHostArray(flat: ArrayLike<number>, dtype: DType): HostArray {
  switch (dtype) {
    case 'f32':
      return flat instanceof Float32Array ? flat : Float32Array.from(flat);
    case 'f64':
      return flat instanceof Float64Array ? flat : Float64Array.from(flat);
    case 'i32':
      return flat instanceof Int32Array ? flat : Int32Array.from(flat, (v) => Math.trunc(v));
    case 'bool':
      return flat instanceof Uint8Array ? flat : Uint8Array.from(flat, (v) => (v ? 1 : 0));
    case 'bf16':
      if (!(flat instanceof Uint16Array))
        throw new TypeError('tensor: bf16 data must be raw bits in a Uint16Array; create f32 and cast()');
      return flat;
  }
}

export function full(shape: number[], value: number, options: CreateOptions = {}): Tensor {
  const device = options.device ?? 'cpu';
  const t = runKernel('full', device, [], { shape: [...shape], dtype: options.dtype ?? 'f32', value })[0]!;
  if (options.requiresGrad) t.setRequiresGrad();
  return t;
}
export const zeros = (shape: number[], options: CreateOptions = {}) => full(shape, 0, options);
export const ones = (shape: number[], options: CreateOptions = {}) => full(shape, 1, options);

export function fullLike(t: Tensor, value: number, options: CreateOptions = {}): Tensor {
  return full([...t.shape], value, { dtype: t.dtype, device: t.device, ...options });
}
export const zerosLike = (t: Tensor, options: CreateOptions = {}) => fullLike(t, 0, options);
export const onesLike = (t: Tensor, options: CreateOptions = {}) => fullLike(t, 1, options);

/** A 0-d tensor holding one value, matching `like` in dtype and device. */
export function scalarLike(like: Tensor, value: number): Tensor {
  return full([], value, { dtype: like.dtype, device: like.device });
}

export function arange(n: number, options: CreateOptions & { start?: number; step?: number } = {}): Tensor {
  const { start = 0, step = 1 } = options;
  return runKernel('arange', options.device ?? 'cpu', [], {
    start,
    step,
    n,
    dtype: options.dtype ?? 'i32',
  })[0]!;
}
