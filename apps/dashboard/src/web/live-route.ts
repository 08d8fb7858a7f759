// "Route a sentence": loads a checkpoint of the run into the page (config.json, model.safetensors,
// tokenizer.json through the API), then routes whatever is typed, in eval mode, on the 'webgl'
// device (gpu.js) where WebGL works, else on the CPU backend, and shows the experts per token/layer.
// Test: cd apps/dashboard && npx vitest run src/web e2e (e2e drives the page in headless chromium)
import { type GrinModel, HfTokenizer, type TokenizerJson } from '@grin-moe/model-grin';
import { parseSafetensorsBytes } from '@grin-moe/tensor';
import { filePath, getBytes, getJson, type RunDetail } from './api.js';
import { buildModel, disposeModel, routeTokens } from './model/route.js';
import { pickDevice, type WebglStatus } from './model/webgl.js';
import { renderTokenRouting } from './routing-view.js';

let devicePromise: Promise<WebglStatus> | undefined;

export function liveRouteSection(run: RunDetail): HTMLElement {
  const section = document.createElement('section');
  section.className = 'wide';
  section.id = 'live-route';
  section.innerHTML = '<h2>Route a sentence (live, in this page)</h2>';
  const withTokenizer = run.checkpoints.filter((c) => c.hasTokenizer);
  if (withTokenizer.length === 0) {
    section.append(
      Object.assign(document.createElement('p'), {
        className: 'note',
        textContent: 'No checkpoint with model.safetensors and tokenizer.json in this run yet.',
      }),
    );
    return section;
  }
  const controls = document.createElement('div');
  controls.className = 'controls';
  const pick = document.createElement('select');
  pick.setAttribute('aria-label', 'checkpoint');
  for (const c of withTokenizer) pick.append(new Option(`step ${c.step}`, c.path));
  pick.value = withTokenizer.at(-1)!.path;
  const input = Object.assign(document.createElement('input'), {
    type: 'text',
    value: 'the mayor calls the council.',
    placeholder: 'type a sentence',
  });
  input.setAttribute('aria-label', 'sentence to route');
  const button = Object.assign(document.createElement('button'), { textContent: 'Route' });
  const status = Object.assign(document.createElement('span'), { className: 'route-status' });
  controls.append(pick, input, button, status);
  const output = document.createElement('div');
  output.className = 'route-output';
  section.append(controls, output);

  let loaded: { path: string; model: GrinModel; tokenizer: HfTokenizer } | null = null;
  const load = async (path: string) => {
    if (loaded?.path === path) return loaded;
    devicePromise ??= pickDevice();
    const device = await devicePromise;
    status.textContent = `loading ${path} …`;
    const [config, weights, tokenizerJson] = await Promise.all([
      getJson<Record<string, unknown>>(filePath(run.name, `${path}/config.json`)),
      getBytes(filePath(run.name, `${path}/model.safetensors`)),
      getJson<TokenizerJson>(filePath(run.name, `${path}/tokenizer.json`)),
    ]);
    if (!config || !weights || !tokenizerJson)
      throw new Error(`${path}: config.json, model.safetensors or tokenizer.json is missing`);
    if (loaded) disposeModel(loaded.model);
    const source = `${path}/model.safetensors`;
    const { tensors } = parseSafetensorsBytes(new Uint8Array(weights), source);
    const model = buildModel(config, tensors, device.device, source);
    const tokenizer = new HfTokenizer(tokenizerJson, { vocabSize: Math.max(model.config.vocabSize, 0) });
    loaded = { path, model, tokenizer };
    section.dataset.device = device.device;
    return loaded;
  };
  const route = async () => {
    button.disabled = true;
    try {
      const { model, tokenizer } = await load(pick.value);
      const started = performance.now();
      const ids = tokenizer.encode(input.value);
      const tokens = routeTokens(model, ids);
      const ms = performance.now() - started;
      const device = await devicePromise!;
      output.replaceChildren(
        renderTokenRouting({
          experts: model.config.numLocalExperts,
          layers: model.config.numHiddenLayers,
          topK: model.config.numExpertsPerTok,
          tokens: tokens.map((t) => ({
            piece: tokenizer.idToToken(t.id) ?? `<${t.id}>`,
            id: t.id,
            experts: t.experts,
            weights: t.weights,
          })),
        }),
      );
      status.textContent = `${ids.length} tokens in ${ms.toFixed(0)} ms on ${device.device} (${device.reason}; gpu.js products ${device.stats.gpu}, CPU ${device.stats.cpu})`;
      section.dataset.routed = String(ids.length);
    } catch (error) {
      status.textContent = `failed: ${(error as Error).message}`;
      status.className = 'route-status error';
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener('click', route);
  input.addEventListener('keydown', (event) => event.key === 'Enter' && route());
  return section;
}
