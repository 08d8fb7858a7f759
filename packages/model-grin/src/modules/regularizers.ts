// The post-training regularizers of GRIN (arXiv 2409.12136, section 4): NEFTune noise on the input
// embeddings (Jain et al. 2024: U(-1, 1) * alpha / sqrt(S * D), as TRL adds it) and dropout on the
// expert MLP's hidden activation (Fedus et al. 2022). Training only; both draw from the forward's
// Philox generator through `rand`, so they are reproducible and drawn on the tensor's device.
// Test: cd packages/model-grin && npx vitest run src/modules/regularizers
import { add, cast, fullLike, type Generator, ge, rand, type Tensor, tidy, where } from '@grin-moe/tensor';

/** x_BSD + U(-1, 1) * alpha / sqrt(S * D) per element (f32 draws, f64 for f64 x). */
export function neftuneNoise(x_BSD: Tensor, alpha: number, generator?: Generator): Tensor {
  if (!(alpha >= 0 && Number.isFinite(alpha)))
    throw new RangeError(`neftuneNoise: alpha must be a finite number >= 0, got ${alpha}`);
  const [, S, D] = x_BSD.shape as [number, number, number];
  const magnitude = alpha / Math.sqrt(S * D);
  if (magnitude === 0) return x_BSD.identity();
  return tidy(() => {
    const noise_BSD = rand([...x_BSD.shape], {
      low: -magnitude,
      high: magnitude,
      dtype: x_BSD.dtype === 'f64' ? 'f64' : 'f32',
      device: x_BSD.device,
      generator,
    });
    return add(x_BSD, noise_BSD.dtype === x_BSD.dtype ? noise_BSD : cast(noise_BSD, x_BSD.dtype));
  });
}

/**
 * An inverted-dropout mask [N, I] in `like`'s dtype and device: 0 with probability p, else 1/(1-p).
 * One draw over the routed rows in expert order, so the loop and grouped MoE paths, which order
 * their rows the same way, apply the same mask for the same seed.
 */
export function expertDropoutMask(
  rows: number,
  width: number,
  p: number,
  like: Tensor,
  generator?: Generator,
): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`expertDropout: p must be in [0, 1), got ${p}`);
  return tidy(() => {
    const dtype = like.dtype === 'f64' ? 'f64' : 'f32';
    const uniform_NI = rand([rows, width], { dtype, device: like.device, generator });
    const mask_NI = where(ge(uniform_NI, p), fullLike(uniform_NI, 1 / (1 - p)), 0);
    return mask_NI.dtype === like.dtype ? mask_NI : cast(mask_NI, like.dtype);
  });
}
