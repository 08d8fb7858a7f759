// A labelled heatmap on a canvas: one row per matrix row, one column per column, colours from a
// colour-blind-safe scale (viridis or cividis, d3-scale-chromatic), the value on hover, a colour bar
// with optional reference ticks (the expert-load view marks the balanced 1/E). The figure carries
// data-rows / data-cols and one label element per row and column, which the e2e tests count.
// Test: cd apps/dashboard && npx vitest run src/web e2e (e2e drives the page in headless chromium)
import { interpolateCividis, interpolateViridis } from 'd3-scale-chromatic';

export interface HeatmapOptions {
  rowLabels: string[];
  colLabels: string[];
  /** Value range of the colour scale (default: the data's min and max). */
  domain?: [number, number];
  scheme?: 'viridis' | 'cividis';
  caption?: string;
  /** Marked on the colour bar, e.g. [{value: 1/E, label: 'balanced'}]. */
  references?: { value: number; label: string }[];
  format?: (value: number) => string;
  /** Hover text; default "row, col: value". */
  describe?: (row: number, col: number, value: number) => string;
  cell?: { width: number; height: number };
}

export const schemes = { viridis: interpolateViridis, cividis: interpolateCividis };

/** Scale position in [0,1]; a flat domain maps to the middle. */
export function scaleValue(value: number, [low, high]: [number, number]): number {
  if (!(high > low)) return 0.5;
  return Math.min(1, Math.max(0, (value - low) / (high - low)));
}

/** Black or white text, whichever reads better on the given rgb() colour. */
function textOn(color: string): string {
  const [r, g, b] = (color.match(/\d+/g) ?? ['0', '0', '0']).map(Number) as [number, number, number];
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#000' : '#fff';
}

export function renderHeatmap(values: number[][], options: HeatmapOptions): HTMLElement {
  const rows = values.length;
  const cols = values[0]?.length ?? 0;
  const flat = values.flat();
  const domain = options.domain ?? [Math.min(...flat), Math.max(...flat)];
  const color = schemes[options.scheme ?? 'viridis'];
  const format = options.format ?? ((v: number) => v.toFixed(3));
  const describe =
    options.describe ??
    ((r: number, c: number, v: number) => `${options.rowLabels[r]}, ${options.colLabels[c]}: ${format(v)}`);
  const cellWidth = options.cell?.width ?? Math.max(28, Math.min(64, Math.floor(560 / Math.max(cols, 1))));
  const cellHeight = options.cell?.height ?? Math.max(22, Math.min(40, Math.floor(320 / Math.max(rows, 1))));

  const figure = document.createElement('figure');
  figure.className = 'heatmap';
  figure.dataset.rows = String(rows);
  figure.dataset.cols = String(cols);

  const colLabels = document.createElement('div');
  colLabels.className = 'cols';
  colLabels.style.gridTemplateColumns = `repeat(${cols}, ${cellWidth}px)`;
  for (const label of options.colLabels)
    colLabels.append(
      Object.assign(document.createElement('span'), { className: 'col-label', textContent: label }),
    );
  const rowLabels = document.createElement('div');
  rowLabels.className = 'rows';
  rowLabels.style.gridTemplateRows = `repeat(${rows}, ${cellHeight}px)`;
  for (const label of options.rowLabels)
    rowLabels.append(
      Object.assign(document.createElement('span'), { className: 'row-label', textContent: label }),
    );

  const canvas = document.createElement('canvas');
  const ratio = window.devicePixelRatio || 1;
  canvas.width = cols * cellWidth * ratio;
  canvas.height = rows * cellHeight * ratio;
  canvas.style.width = `${cols * cellWidth}px`;
  canvas.style.height = `${rows * cellHeight}px`;
  const context = canvas.getContext('2d')!;
  context.scale(ratio, ratio);
  context.font = '11px system-ui, sans-serif';
  context.textAlign = 'center';
  context.textBaseline = 'middle';
  values.forEach((row, r) =>
    row.forEach((value, c) => {
      const fill = color(scaleValue(value, domain));
      context.fillStyle = fill;
      context.fillRect(c * cellWidth, r * cellHeight, cellWidth - 1, cellHeight - 1);
      if (cellWidth >= 34) {
        context.fillStyle = textOn(fill);
        context.fillText(format(value), c * cellWidth + cellWidth / 2, r * cellHeight + cellHeight / 2);
      }
    }),
  );
  const tooltip = document.getElementById('tooltip');
  canvas.addEventListener('mousemove', (event) => {
    const c = Math.floor(event.offsetX / cellWidth);
    const r = Math.floor(event.offsetY / cellHeight);
    if (!tooltip || r < 0 || c < 0 || r >= rows || c >= cols) return;
    tooltip.hidden = false;
    tooltip.textContent = describe(r, c, values[r]![c]!);
    tooltip.style.left = `${event.clientX + 12}px`;
    tooltip.style.top = `${event.clientY + 12}px`;
  });
  canvas.addEventListener('mouseleave', () => tooltip && (tooltip.hidden = true));

  figure.append(
    document.createElement('span'),
    colLabels,
    rowLabels,
    canvas,
    document.createElement('span'),
    colorBar(domain, color, format, options.references ?? []),
  );
  if (options.caption)
    figure.append(Object.assign(document.createElement('figcaption'), { textContent: options.caption }));
  return figure;
}

function colorBar(
  domain: [number, number],
  color: (t: number) => string,
  format: (v: number) => string,
  references: { value: number; label: string }[],
): HTMLElement {
  const bar = document.createElement('div');
  bar.className = 'colorbar';
  const canvas = document.createElement('canvas');
  canvas.width = 220;
  canvas.height = 12;
  const context = canvas.getContext('2d')!;
  for (let x = 0; x < 220; x++) {
    context.fillStyle = color(x / 219);
    context.fillRect(x, 0, 1, 12);
  }
  for (const reference of references) {
    const x = Math.round(scaleValue(reference.value, domain) * 219);
    context.fillStyle = '#fff';
    context.fillRect(x - 2, 0, 5, 12);
    context.fillStyle = '#000';
    context.fillRect(x - 1, 0, 3, 12);
  }
  const refText = references.map((r) => `▮ ${r.label} = ${format(r.value)}`).join('  ');
  bar.append(
    format(domain[0]),
    canvas,
    format(domain[1]),
    Object.assign(document.createElement('span'), { className: 'reference', textContent: refText }),
  );
  return bar;
}
