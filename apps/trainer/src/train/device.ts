// Where training runs: the CUDA backend is imported only when a run asks for it (so the CLI works
// where it is not built), and `toDevice` copies a CPU model's parameters to the run's device and
// dtype. With bf16 the optimizer holds bf16 leaves (f32 master weights inside AdamW) and the model
// computes on them directly: bf16 activations and gradients, f32 router math and loss (model-grin).
// Test: cd apps/trainer && npx vitest run src/train/cuda.test.ts (skips without a GPU)
import { GrinModel, stackExpertWeights } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';

export class DeviceError extends Error {}

export type ParamDType = 'f32' | 'bf16';

/** Registers the cuda backend, or throws naming why it cannot be used. */
export async function requireCuda(what = 'train --device cuda'): Promise<void> {
  let status: { available: boolean; reason?: string };
  try {
    const cuda = await import('@grin-moe/kernels-cuda');
    status = cuda.cudaStatus();
  } catch (error) {
    throw new DeviceError(
      `${what}: cannot load @grin-moe/kernels-cuda (${(error as Error).message}); build it with pnpm --filter @grin-moe/kernels-cuda build, or use --device cpu`,
    );
  }
  if (!status.available)
    throw new DeviceError(
      `${what}: cuda is unavailable: ${status.reason ?? 'no reason given'}; use --device cpu`,
    );
}

/** Runs an optimizer update on a side stream: `fence` marks each parameter ready (kernels-cuda). */
export type SideStep = (update: (fence: () => void) => void) => void;

/** The cuda backend's side stream for `device` (requireCuda first). */
export async function cudaSideStep(device: string): Promise<SideStep> {
  const cuda = await import('@grin-moe/kernels-cuda');
  return (update) => cuda.onSideStream(device, update);
}

/** A model's parameters on a device in a dtype: the leaves the optimizer updates. */
export class PlacedModel {
  constructor(
    readonly config: GrinModel['config'],
    /** Leaves by checkpoint name, on `device`, of `dtype` (a pipeline stage: its own only). */
    readonly leaves: Map<string, T.Tensor>,
    readonly device: string,
    readonly dtype: ParamDType,
    /** The model over these very leaves, when the caller has it (the CPU f32 case). */
    private model?: GrinModel,
  ) {}

  parameters(): T.Tensor[] {
    return [...this.leaves.values()];
  }

  /** The model to run: over the leaves themselves, in the leaves' dtype. */
  compute(): GrinModel {
    // Built on first use: a pipeline stage's leaves are not a whole model and never run as one.
    this.model ??= new GrinModel(this.config, this.leaves, this.dtype, this.device);
    return this.model;
  }

  /** An f32 model on the CPU (checkpoints, routing report): the model itself when already there. */
  toCpu(): { model: GrinModel; copied: boolean } {
    if (this.device === 'cpu' && this.dtype === 'f32') return { model: this.compute(), copied: false };
    const params = new Map<string, T.Tensor>();
    T.noGrad(() => {
      for (const [name, leaf] of this.leaves) {
        const host = T.tidy(() =>
          leaf.dtype === 'f32' ? leaf.toArray() : T.cast(leaf, 'f32').toArray(),
        ) as Float32Array;
        params.set(name, T.tensor(host, { shape: [...leaf.shape] }));
      }
    });
    return { model: new GrinModel(this.config, params, 'f32', 'cpu'), copied: true };
  }

  dispose(): void {
    for (const t of this.leaves.values()) t.dispose();
  }
}

/**
 * Copies every parameter of a CPU f32 model to `device` in `dtype` (bf16 rounded to nearest-even).
 * On the CPU in f32 nothing is copied: the model's own tensors become the leaves.
 */
export function toDevice(model: GrinModel, device: string, dtype: ParamDType): PlacedModel {
  if (model.device !== 'cpu' || model.dtype !== 'f32')
    throw new DeviceError(`toDevice: expects a CPU f32 model, got ${model.dtype} on ${model.device}`);
  if (device === 'cpu' && dtype === 'f32')
    return new PlacedModel(model.config, model.params, 'cpu', 'f32', model);
  const leaves = new Map<string, T.Tensor>();
  T.noGrad(() => {
    for (const [name, p] of model.params) {
      const host = p.toArray() as Float32Array;
      const onDevice = T.tensor(host, { shape: [...p.shape], device });
      const leaf = dtype === 'f32' ? onDevice : T.cast(onDevice, dtype);
      if (leaf !== onDevice) onDevice.dispose();
      leaf.name = name;
      leaves.set(name, leaf.setRequiresGrad(true));
    }
  });
  // off the CPU the MoE runs as grouped GEMMs: each expert's w1 | w3 as one block makes them one GEMM
  if (device !== 'cpu') stackExpertWeights(leaves, model.config);
  return new PlacedModel(model.config, leaves, device, dtype);
}
