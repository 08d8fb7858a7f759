// Line charts with uPlot: training curves (train + validation loss, learning rate, tokens/s) that
// take appended points without a reload, and the router comparison. Series colours are the
// Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), and the dashed
// validation lines differ in pattern as well as colour.
// Test: cd apps/dashboard && npx vitest run src/web e2e (e2e drives the page in headless chromium)
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { type Series, tickLabels } from './transforms.js';

export const palette = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#F0E442',
  '#000000',
];

export interface LineSpec {
  label: string;
  color: string;
  dash?: number[];
  points?: boolean;
}

export function lineChart(
  title: string,
  lines: LineSpec[],
  data: uPlot.AlignedData,
  options: { log?: boolean; width?: number } = {},
): { element: HTMLElement; chart: uPlot } {
  const element = document.createElement('div');
  element.className = 'chart';
  element.dataset.title = title;
  const chart = new uPlot(
    {
      title,
      width: options.width ?? 440,
      height: 220,
      scales: { x: { time: false }, y: options.log ? { distr: 3 } : {} },
      // Labels as many digits as it takes to tell the ticks apart (uPlot's own can repeat).
      axes: [
        { label: 'step', values: (_chart, ticks) => tickLabels(ticks) },
        { values: (_chart, ticks) => tickLabels(ticks) },
      ],
      series: [
        { label: 'step' },
        ...lines.map((line) => ({
          label: line.label,
          stroke: line.color,
          width: 2,
          dash: line.dash,
          spanGaps: true,
          points: { show: line.points ?? false, size: 6, fill: line.color },
        })),
      ],
    },
    data,
    element,
  );
  element.dataset.points = String(data[0].length);
  return { element, chart };
}

/** The three training charts; `update` redraws them from the (appended) series. */
export function trainingCharts(series: Series) {
  const loss = lineChart(
    'loss',
    [
      { label: 'train loss', color: palette[0]! },
      { label: 'val loss', color: palette[1]!, dash: [6, 4], points: true },
    ],
    [[], [], []],
  );
  const lr = lineChart('learning rate', [{ label: 'lr', color: palette[2]! }], [[], []]);
  const speed = lineChart('tokens/s', [{ label: 'tokens/s', color: palette[3]! }], [[], []]);
  const update = () => {
    loss.chart.setData([series.step, series.loss, series.valLoss] as uPlot.AlignedData);
    lr.chart.setData([series.step, series.lr]);
    speed.chart.setData([series.step, series.tokensPerSecond]);
    for (const c of [loss, lr, speed]) c.element.dataset.points = String(series.step.length);
  };
  update();
  return { elements: [loss.element, lr.element, speed.element], update };
}
