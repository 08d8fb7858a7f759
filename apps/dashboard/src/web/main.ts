// The dashboard page: the run list, then for the chosen run (#run=NAME) its curves (live while it
// trains, over Server-Sent Events; marked finished or stopped once it is not), the expert-load and category-similarity heatmaps, the token
// routing view, the router comparison and the live "route a sentence" panel. Each optional view says
// how to compute its data when the file is absent. End-to-end test: e2e/dashboard.e2e.test.ts
import { filePath, getJson, type RunDetail, type RunSummary, runPath } from './api.js';
import { lineChart, palette, trainingCharts } from './charts.js';
import { renderHeatmap } from './heatmap.js';
import { liveRouteSection } from './live-route.js';
import { renderTokenRouting } from './routing-view.js';
import {
  alignCompare,
  appendRecords,
  checkCategorySimilarity,
  checkCompare,
  checkExpertLoad,
  checkTokenRouting,
  emptySeries,
  type MetricRecord,
} from './transforms.js';

const main = document.getElementById('main')!;
const statusLine = document.getElementById('status')!;
let closeStream: (() => void) | null = null;

function section(id: string, title: string, wide = false): HTMLElement {
  const element = document.createElement('section');
  element.id = id;
  if (wide) element.className = 'wide';
  element.append(Object.assign(document.createElement('h2'), { textContent: title }));
  return element;
}

const note = (text: string, className = 'note') =>
  Object.assign(document.createElement('p'), { className, textContent: text });
const notComputed = (what: string, command: string) => note(`${what}: not computed yet: run ${command}`);

/** A missing view's command with a button that copies it, ready to paste into a terminal. */
function commandHint(what: string, command: string): HTMLElement {
  const hint = note(`${what}: not computed yet. Run: `);
  hint.classList.add('command-hint');
  const code = Object.assign(document.createElement('code'), { textContent: command });
  const copy = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Copy' });
  copy.setAttribute('aria-label', `copy: ${command}`);
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(command);
      copy.textContent = 'Copied';
    } catch {
      // No clipboard (an insecure origin): select the command so that Ctrl+C takes it.
      getSelection()?.selectAllChildren(code);
      copy.textContent = 'Selected: press Ctrl+C';
    }
  });
  hint.append(code, ' ', copy);
  return hint;
}

const stateLabel = { training: '● live', finished: '■ finished', stopped: '■ stopped' } as const;

async function optional<T>(
  target: HTMLElement,
  load: () => Promise<T | null>,
  missing: HTMLElement,
  render: (value: T) => Node | Node[],
): Promise<void> {
  try {
    const value = await load();
    if (value === null) target.append(missing);
    else target.append(...[render(value)].flat());
  } catch (error) {
    target.append(note((error as Error).message, 'error'));
  }
}

async function showRunList(selected: string | null): Promise<void> {
  const list = document.getElementById('runs')!;
  const body = await getJson<{ runs: RunSummary[] }>('api/runs');
  list.replaceChildren(
    ...(body?.runs ?? []).map((run) => {
      const item = document.createElement('li');
      const link = Object.assign(document.createElement('a'), {
        href: `#run=${encodeURIComponent(run.name)}`,
        textContent: run.name,
      });
      if (run.name === selected) link.className = 'active';
      const last = run.last
        ? `${run.state === 'training' ? 'training, ' : run.state === 'stopped' ? 'stopped, ' : ''}step ${run.last.step}, loss ${run.last.loss?.toFixed(3)}`
        : run.files.compare
          ? 'comparison'
          : 'no metrics';
      link.append(Object.assign(document.createElement('small'), { textContent: last }));
      item.append(link);
      return item;
    }),
  );
  if (!body?.runs.length) list.replaceChildren(note('No runs in this directory yet: grin train'));
}

function liveCurves(run: string, state: RunSummary['state'], target: HTMLElement): void {
  const series = emptySeries();
  const charts = trainingCharts(series);
  const live = Object.assign(document.createElement('span'), { className: 'live-state' });
  const row = Object.assign(document.createElement('div'), { className: 'charts' });
  row.append(...charts.elements);
  target.append(live, row);
  const source = new EventSource(runPath(run, '/events?offset=0'));
  source.addEventListener('metrics', (event) => {
    const chunk = JSON.parse((event as MessageEvent).data) as { records: MetricRecord[]; reset: boolean };
    if (chunk.reset) Object.assign(series, emptySeries());
    appendRecords(series, chunk.records);
    charts.update();
    live.textContent = `${stateLabel[state]}: ${series.step.length} steps, last loss ${series.loss.at(-1)?.toFixed(4)}`;
    live.className = `live-state ${state === 'training' ? 'live' : state}`;
    live.dataset.state = state;
  });
  source.addEventListener('error', () => (live.textContent = '○ reconnecting…'));
  closeStream = () => source.close();
}

/** The comparison retrains the run's own config (saved as config.json) once per router. */
function compareCommand(name: string, config: unknown): string {
  return config
    ? `pnpm grin eval compare --config runs/${name}/config.json --name ${name}`
    : `pnpm grin eval compare --name ${name}`;
}

async function showRun(name: string): Promise<void> {
  closeStream?.();
  closeStream = null;
  const run = await getJson<RunDetail>(runPath(name));
  if (!run) {
    main.replaceChildren(note(`run '${name}' not found`, 'error'));
    return;
  }
  const curves = section('curves', `${name}: training curves`, true);
  const load = section('expert-load', 'Expert load per layer');
  const similarity = section('category-similarity', 'Category similarity of routing');
  const tokens = section('token-routing', 'Token routing by layer', true);
  const compare = section('compare', 'Router comparison', true);
  main.replaceChildren(curves, load, similarity, tokens, compare, liveRouteSection(run));

  if (run.files.metrics) liveCurves(name, run.state, curves);
  else curves.append(note('No metrics.jsonl in this run.'));

  await Promise.all([
    optional(
      load,
      () => getJson(filePath(name, 'routing/expert-load.json')),
      notComputed('expert load', `grin train (written at the end) or grin eval routing --model runs/${name}`),
      (json) => {
        const data = checkExpertLoad(json);
        return renderHeatmap(data.layers, {
          rowLabels: data.layers.map((_, l) => `layer ${l}`),
          colLabels: Array.from({ length: data.experts }, (_, e) => `e${e}`),
          domain: [0, Math.max(2 * data.balanced, ...data.layers.flat())],
          references: [{ value: data.balanced, label: `balanced 1/E` }],
          caption: `Fraction of routed picks per expert (rows sum to 1). Balanced is 1/${data.experts} = ${data.balanced.toFixed(3)}; max over balanced per layer: ${data.maxOverBalanced.map((m) => m.toFixed(2)).join(', ')}.`,
          describe: (l, e, v) =>
            `layer ${l}, expert ${e}: ${v.toFixed(3)} (${(v / data.balanced).toFixed(2)}× balanced)`,
        });
      },
    ),
    optional(
      similarity,
      () => getJson(filePath(name, 'eval/category-similarity.json')),
      notComputed(
        'category similarity',
        `grin train (written at the end) or grin eval routing --model runs/${name}`,
      ),
      (json) => {
        const data = checkCategorySimilarity(json);
        // One scale for every layer, from the lowest similarity seen up to 1 (identical routing).
        const low = Math.min(0.9, ...data.similarity.flat(2));
        return data.similarity.map((matrix, l) =>
          renderHeatmap(matrix, {
            rowLabels: data.categories,
            colLabels: data.categories,
            scheme: 'cividis',
            domain: [low, 1],
            caption: `layer ${l}: cosine similarity of the categories' expert distributions`,
            describe: (a, b, v) =>
              `layer ${l}: ${data.categories[a]} vs ${data.categories[b]}: ${v.toFixed(3)}`,
          }),
        );
      },
    ),
    optional(
      tokens,
      () => getJson(filePath(name, 'routing/token-routing.json')),
      notComputed(
        'token routing',
        `grin train (written at the end) or grin eval routing --model runs/${name}`,
      ),
      (json) => renderTokenRouting(checkTokenRouting(json)),
    ),
    optional(
      compare,
      () => getJson(runPath(name, '/compare')),
      commandHint('router comparison (a second training per router)', compareCommand(name, run.config)),
      (json) => {
        const data = checkCompare(json);
        const charts = (['loss', 'val_loss'] as const).map((key) => {
          const aligned = alignCompare(data, key);
          const lines = data.runs.map((r, i) => ({
            label: r.label,
            color: palette[i % palette.length]!,
            dash: i % 2 ? [6, 4] : undefined,
            points: key === 'val_loss',
          }));
          return lineChart(key === 'loss' ? 'train loss' : 'validation loss', lines, [
            aligned.step,
            ...aligned.columns,
          ] as never).element;
        });
        const row = Object.assign(document.createElement('div'), { className: 'charts' });
        row.append(...charts);
        return data.title ? [note(data.title, ''), row] : row;
      },
    ),
  ]);
}

async function route(): Promise<void> {
  const name = new URLSearchParams(location.hash.slice(1)).get('run');
  try {
    await showRunList(name);
    if (name) await showRun(name);
    statusLine.textContent = name ? `run ${name}` : '';
    document.body.dataset.ready = 'true';
  } catch (error) {
    statusLine.textContent = (error as Error).message;
  }
}

window.addEventListener('hashchange', () => {
  document.body.dataset.ready = 'false';
  void route();
});
void route();
