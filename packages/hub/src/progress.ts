// One progress bar per downloaded file on stderr: redrawn in place on a terminal (at most ten
// times a second), a start and an end line when stderr is a file or a pipe, so logs stay short.
// Test: cd packages/hub && npx vitest run src/progress
export interface ProgressSink {
  start(file: string, total: number, resumedFrom: number): void;
  advance(bytes: number): void;
  end(ok: boolean): void;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** `name  [#####-----]  48%  1.2 GB / 2.5 GB  35.0 MB/s` */
export function renderBar(
  file: string,
  done: number,
  total: number,
  bytesPerSecond: number,
  width = 24,
): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * width);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
  const percent = `${Math.floor(fraction * 100)}`.padStart(3);
  return `${file}  [${bar}] ${percent}%  ${formatBytes(done)} / ${formatBytes(total)}  ${formatBytes(bytesPerSecond)}/s`;
}

export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressSink {
  let file = '';
  let total = 0;
  let done = 0;
  let startedAt = 0;
  let resumedFrom = 0;
  let lastDraw = 0;
  const speed = () => (done - resumedFrom) / Math.max(1e-3, (performance.now() - startedAt) / 1000);
  const draw = () => stream.write(`\r${renderBar(file, done, total, speed())}\x1b[K`);
  return {
    start(name, size, from) {
      file = name;
      total = size;
      done = from;
      resumedFrom = from;
      startedAt = performance.now();
      lastDraw = 0;
      if (stream.isTTY) draw();
      else
        stream.write(
          `downloading ${file} (${formatBytes(total)}${from > 0 ? `, resuming at ${formatBytes(from)}` : ''})\n`,
        );
    },
    advance(bytes) {
      done += bytes;
      const now = performance.now();
      if (stream.isTTY && now - lastDraw > 100) {
        lastDraw = now;
        draw();
      }
    },
    end(ok) {
      if (stream.isTTY) {
        draw();
        stream.write(ok ? '\n' : '  (stopped)\n');
      } else if (ok) stream.write(`downloaded ${file} (${formatBytes(done)})\n`);
    },
  };
}

/** For tests and quiet callers. */
export const silentProgress: ProgressSink = { start() {}, advance() {}, end() {} };
