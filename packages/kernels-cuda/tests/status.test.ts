// Runs everywhere (CI has no GPU): importing the package must not throw, cudaStatus() must say
// why cuda is unavailable when it is, and a cuda tensor must then fail with that reason.
// Run: cd packages/kernels-cuda && npx vitest run tests/status.test.ts
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { cudaStatus } from '../src/index.js';

describe('cuda backend registration and status', () => {
  it('registers the cuda backend and its kernels on import', () => {
    expect(T.registeredBackends()).toContain('cuda');
    for (const op of [
      'add',
      'matmul',
      'sum',
      'softmax',
      'layer_norm',
      'cross_entropy',
      'adamw_step',
    ] as const)
      expect(T.hasKernel(op, 'cuda')).toBe(true);
  });

  it('reports availability with a reason or devices', () => {
    const status = cudaStatus();
    if (status.available) {
      expect(status.devices!.length).toBeGreaterThan(0);
      expect(status.devices![0]!.computeCapability).toMatch(/^\d+\.\d+$/);
    } else {
      expect(status.reason).toMatch(/addon|driver|GPU|cuBLAS/);
      console.log(`[kernels-cuda] cuda unavailable here: ${status.reason}`);
    }
  });

  it.skipIf(cudaStatus().available)('fails clearly when a cuda tensor is made without a GPU', () => {
    expect(() => T.zeros([2], { device: 'cuda' })).toThrow(/cuda backend unavailable/);
    expect(() => T.tensor([1, 2], { device: 'cuda' })).toThrow(/cuda backend unavailable/);
  });
});
