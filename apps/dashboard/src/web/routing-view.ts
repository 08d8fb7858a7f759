// The token-by-layer routing view: the text with each token underlined in the colour of its first
// expert at the chosen layer, beside a table (rows = layers, columns = tokens) listing the K experts
// per cell, coloured by the first. Hovering a token highlights its column and shows the weights.
// Used for routing/token-routing.json and for a sentence routed live in the page.
// Test: cd apps/dashboard && npx vitest run src/web e2e (e2e drives the page in headless chromium)
import { palette } from './charts.js';
import { schemes } from './heatmap.js';
import { showPiece, type TokenRouting } from './transforms.js';

/** Okabe-Ito for up to 8 experts, evenly spaced viridis beyond that. */
export function expertColor(expert: number, experts: number): string {
  return experts <= palette.length ? palette[expert]! : schemes.viridis(expert / Math.max(1, experts - 1));
}

const textOn = (color: string) =>
  ['#F0E442', '#E69F00', '#56B4E9', '#009E73'].includes(color) ? '#000' : '#fff';

export function renderTokenRouting(routing: TokenRouting): HTMLElement {
  const root = document.createElement('div');
  root.className = 'tokens';
  root.dataset.tokens = String(routing.tokens.length);
  root.dataset.layers = String(routing.layers);
  const tooltip = document.getElementById('tooltip');

  const left = document.createElement('div');
  const layerPick = document.createElement('select');
  layerPick.setAttribute('aria-label', 'layer whose first expert colours the text');
  for (let l = 0; l < routing.layers; l++) layerPick.append(new Option(`colour by layer ${l}`, String(l)));
  const text = document.createElement('div');
  text.className = 'token-text';
  const spans = routing.tokens.map((token) =>
    Object.assign(document.createElement('span'), { textContent: showPiece(token.piece) }),
  );
  text.append(...spans);
  const recolor = () => {
    const l = Number(layerPick.value);
    routing.tokens.forEach(
      (token, i) => (spans[i]!.style.borderBottomColor = expertColor(token.experts[l]![0]!, routing.experts)),
    );
  };
  layerPick.addEventListener('change', recolor);
  recolor();
  const legend = document.createElement('div');
  legend.className = 'legend';
  for (let e = 0; e < routing.experts; e++) {
    const swatch = Object.assign(document.createElement('span'), { textContent: ` expert ${e} ` });
    swatch.style.background = expertColor(e, routing.experts);
    swatch.style.color = textOn(expertColor(e, routing.experts));
    legend.append(swatch, ' ');
  }
  left.append(layerPick, text, legend);

  const table = document.createElement('table');
  table.className = 'routing';
  const head = table.createTHead().insertRow();
  head.append(Object.assign(document.createElement('th'), { textContent: 'layer' }));
  routing.tokens.forEach((token) =>
    head.append(
      Object.assign(document.createElement('th'), {
        textContent: showPiece(token.piece),
        className: 'token-label',
      }),
    ),
  );
  const body = table.createTBody();
  for (let l = 0; l < routing.layers; l++) {
    const row = body.insertRow();
    row.append(
      Object.assign(document.createElement('th'), { textContent: String(l), className: 'layer-label' }),
    );
    routing.tokens.forEach((token) => {
      const cell = row.insertCell();
      const experts = token.experts[l]!;
      cell.textContent = experts.join('·');
      const color = expertColor(experts[0]!, routing.experts);
      cell.style.background = color;
      cell.style.color = textOn(color);
    });
  }
  const highlight = (index: number, on: boolean, event?: MouseEvent) => {
    spans[index]?.classList.toggle('hover', on);
    for (const row of Array.from(table.rows)) row.cells[index + 1]?.classList.toggle('hover', on);
    if (!tooltip) return;
    tooltip.hidden = !on;
    if (on && event) {
      const token = routing.tokens[index]!;
      tooltip.textContent = `${JSON.stringify(showPiece(token.piece))}: ${token.experts.map((e, l) => `L${l} ${e.map((x, k) => `e${x} ${token.weights[l]![k]!.toFixed(2)}`).join(', ')}`).join(' | ')}`;
      tooltip.style.left = `${event.clientX + 12}px`;
      tooltip.style.top = `${event.clientY + 12}px`;
    }
  };
  spans.forEach((span, i) => {
    span.addEventListener('mousemove', (event) => highlight(i, true, event));
    span.addEventListener('mouseleave', () => highlight(i, false));
  });
  table.addEventListener('mousemove', (event) => {
    const cell = (event.target as HTMLElement).closest('td, th') as HTMLTableCellElement | null;
    table.querySelectorAll('.hover').forEach((el) => el.classList.remove('hover'));
    spans.forEach((s) => s.classList.remove('hover'));
    if (cell && cell.cellIndex > 0) highlight(cell.cellIndex - 1, true, event);
  });
  table.addEventListener('mouseleave', () => routing.tokens.forEach((_, i) => highlight(i, false)));
  root.append(left, table);
  return root;
}
