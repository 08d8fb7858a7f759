// Lays each expert's w1 and w3 out as one [2I, D] block in memory, as transformers v5's fused
// gate_up_proj does, while the parameter names and shapes stay the checkpoint's: w1 and w3 become
// the two halves (views) of the block. The grouped linear then runs an expert's gate and up
// projections, and their input gradient, as one GEMM of twice the width (kernels-cuda grouped.cpp
// checks the adjacency). Optimizers update the views in place; checkpoints read them as usual.
// Test: cd packages/model-grin && npx vitest run src/modules/stack
import { concat, noGrad } from '@grin-moe/tensor';
import type { GrinConfig } from '../config.js';
import { expertPrefix, type ParameterMap } from './names.js';

export function stackExpertWeights(params: ParameterMap, config: GrinConfig): void {
  noGrad(() => {
    for (let layer = 0; layer < config.numHiddenLayers; layer++) {
      for (let e = 0; e < config.numLocalExperts; e++) {
        const names = [`${expertPrefix(layer, e)}.w1.weight`, `${expertPrefix(layer, e)}.w3.weight`] as const;
        const w1 = params.get(names[0]);
        const w3 = params.get(names[1]);
        if (!w1 || !w3) continue; // a model split across stages holds only some layers
        const I = w1.shape[0]!;
        const block = concat([w1, w3], 0);
        [block.slice([0, I]), block.slice([I, 2 * I])].forEach((view, i) => {
          const old = i === 0 ? w1 : w3;
          view.name = old.name;
          if (old.requiresGrad) view.setRequiresGrad();
          params.set(names[i], view);
          old.dispose();
        });
        block.dispose(); // the two views keep the storage
      }
    }
  });
}
