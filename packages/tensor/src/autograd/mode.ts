// Grad mode: whether op applications are recorded. noGrad() turns it off for a block
// (evaluation, optimizer steps, the backward pass itself).
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

export function noGrad<T>(fn: () => T): T {
  const before = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = before;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const before = enabled;
  enabled = true;
  try {
    return fn();
  } finally {
    enabled = before;
  }
}

/** `using _ = noGradScope();` */
export function noGradScope(): Disposable {
  const before = enabled;
  enabled = false;
  return {
    [Symbol.dispose]() {
      enabled = before;
    },
  };
}
