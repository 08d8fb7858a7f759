// Memory ownership: storages are reference counted by their handles; a handle is released by
// dispose(), by the scope that created it, or (as a backstop) when the GC collects it. Tests use
// liveStorages() through expectNoLeaks() (testing.ts) to prove that a computation frees what it made.
// Test: cd packages/tensor && npx vitest run src/core
import type { Storage } from './backend.js';
import type { Tensor } from './tensor.js';

let live = 0;
let liveBytesCount = 0;

export function retainStorage(storage: Storage): void {
  if (storage.refs === 0) {
    live++;
    liveBytesCount += storage.length;
  }
  storage.refs++;
}

export function releaseStorage(storage: Storage): void {
  if (storage.refs <= 0) throw new Error('internal: storage released more often than retained');
  if (--storage.refs === 0) {
    live--;
    liveBytesCount -= storage.length;
    storage.backend.free(storage);
  }
}

/** Number of storages some handle still holds (across all backends). */
export function liveStorages(): number {
  return live;
}
/** Elements (not bytes) held by live storages. */
export function liveElements(): number {
  return liveBytesCount;
}

// Handles nobody disposed give their storage back when collected.
export const finalizer = new FinalizationRegistry<Storage>((storage) => releaseStorage(storage));

const scopes: Array<Set<Tensor>> = [];

export function trackInScope(tensor: Tensor): void {
  scopes[scopes.length - 1]?.add(tensor);
}

/**
 * Disposes every tensor created while it is open, except those passed to keep().
 * `using scope = new Scope();` or `tidy(() => ...)`.
 */
export class Scope implements Disposable {
  private readonly tensors = new Set<Tensor>();
  private closed = false;
  constructor() {
    scopes.push(this.tensors);
  }
  /** Moves tensors out of this scope into the enclosing one (or none). */
  keep<T>(value: T): T {
    forEachTensor(value, (t) => {
      if (this.tensors.delete(t)) scopes[scopes.indexOf(this.tensors) - 1]?.add(t);
    });
    return value;
  }
  [Symbol.dispose](): void {
    if (this.closed) return;
    this.closed = true;
    const at = scopes.lastIndexOf(this.tensors);
    if (at !== scopes.length - 1) throw new Error('Scope closed out of order: close inner scopes first');
    scopes.pop();
    for (const t of this.tensors) t.dispose();
    this.tensors.clear();
  }
  dispose(): void {
    this[Symbol.dispose]();
  }
}

/**
 * Takes the tensors in value out of every open scope: they live until disposed by hand (a cache made
 * during a step that later steps read).
 */
export function persist<T>(value: T): T {
  forEachTensor(value, (t) => {
    for (const scope of scopes) scope.delete(t);
  });
  return value;
}

/** Runs fn in a scope; tensors reachable from its result survive, everything else is disposed. */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope();
  try {
    return scope.keep(fn());
  } finally {
    scope.dispose();
  }
}

/** Calls visit on every Tensor inside nested arrays, plain objects and Maps. */
export function forEachTensor(value: unknown, visit: (t: Tensor) => void, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    visit(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) forEachTensor(v, visit, seen);
  else if (value instanceof Map) for (const v of value.values()) forEachTensor(v, visit, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype)
    for (const v of Object.values(value)) forEachTensor(v, visit, seen);
}

export const TENSOR_BRAND = Symbol.for('grin-moe.tensor');
function isTensor(value: object): value is Tensor {
  return (value as { [TENSOR_BRAND]?: boolean })[TENSOR_BRAND] === true;
}
