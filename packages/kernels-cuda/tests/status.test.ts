// Runs everywhere (CI has no GPU): importing the package must not throw, cudaStatus() must say
// why cuda is unavailable when it is, and a cuda tensor must then fail with that reason.
// Run: cd packages/kernels-cuda && npx vitest run tests/status.test.ts
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { loadNative } from '../src/native.js';

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

  // The addon answers gemmInfo without a GPU (no CUDA call), so the setting's parsing is checked here.
  const addon = loadNative().addon;
  it.skipIf(!addon)('GRIN_GEMM_TUNING sets the GEMM tuning default, and a bad value is named', () => {
    const before = process.env.GRIN_GEMM_TUNING;
    try {
      process.env.GRIN_GEMM_TUNING = 'sometimes';
      expect(() => addon!.gemmInfo()).toThrow(
        "GRIN_GEMM_TUNING must be off, grouped or all, got 'sometimes'",
      );
      process.env.GRIN_GEMM_TUNING = 'all';
      expect(addon!.gemmInfo().tuning).toBe(2);
      addon!.setGemmTuning(0); // an explicit setting wins over the variable
      expect(addon!.gemmInfo().tuning).toBe(0);
      expect(() => addon!.setGemmTuning(3)).toThrow('gemm tuning must be 0 (off), 1 (grouped) or 2 (all)');
    } finally {
      if (before === undefined) delete process.env.GRIN_GEMM_TUNING;
      else process.env.GRIN_GEMM_TUNING = before;
    }
  });
});
