// Parameter names and shapes in the ORIGINAL GRIN / Phi-3.5-MoE checkpoint naming (DESIGN.md), the
// single source the modules, the loader and the saver agree on, so save/load needs no renaming.
// Shape legend: V vocab, D hidden size, I expert intermediate size, E experts, Dh head dim.
// Test: cd packages/model-grin && npx vitest run src/checkpoint
import type { Tensor } from '@grin-moe/tensor';
import type { GrinConfig } from '../config.js';

export type ParameterMap = Map<string, Tensor>;

export const layerPrefix = (layer: number) => `model.layers.${layer}`;
export const expertPrefix = (layer: number, expert: number) =>
  `model.layers.${layer}.block_sparse_moe.experts.${expert}`;

/** Every parameter the config implies, in checkpoint order, with its shape. */
export function parameterShapes(config: GrinConfig): Array<[string, number[]]> {
  const { vocabSize: V, hiddenSize: D, intermediateSize: I, numLocalExperts: E } = config;
  const kv = config.numKeyValueHeads * config.headDim;
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [V, D]]];
  for (let l = 0; l < config.numHiddenLayers; l++) {
    const p = layerPrefix(l);
    const proj = (name: string, rows: number) => {
      out.push([`${p}.self_attn.${name}.weight`, [rows, D]]);
      if (config.attentionBias) out.push([`${p}.self_attn.${name}.bias`, [rows]]);
    };
    proj('q_proj', D);
    proj('k_proj', kv);
    proj('v_proj', kv);
    out.push([`${p}.self_attn.o_proj.weight`, [D, D]]);
    if (config.attentionBias) out.push([`${p}.self_attn.o_proj.bias`, [D]]);
    out.push([`${p}.block_sparse_moe.gate.weight`, [E, D]]);
    for (let e = 0; e < E; e++) {
      const x = expertPrefix(l, e);
      out.push([`${x}.w1.weight`, [I, D]], [`${x}.w2.weight`, [D, I]], [`${x}.w3.weight`, [I, D]]);
    }
    for (const norm of ['input_layernorm', 'post_attention_layernorm']) {
      out.push([`${p}.${norm}.weight`, [D]], [`${p}.${norm}.bias`, [D]]);
    }
  }
  out.push(['model.norm.weight', [D]], ['model.norm.bias', [D]]);
  if (!config.tieWordEmbeddings) out.push(['lm_head.weight', [V, D]]);
  if (config.lmHeadBias) out.push(['lm_head.bias', [V]]);
  return out;
}

/** Looks a parameter up, with an error that says which one is absent. */
export function param(params: ParameterMap, name: string): Tensor {
  const t = params.get(name);
  if (!t) throw new Error(`model parameter '${name}' is missing (have ${params.size} parameters)`);
  return t;
}

/** The bias if the map holds it (attention_bias / lm_head_bias may be false). */
export const optionalParam = (params: ParameterMap, name: string) => params.get(name) ?? null;
