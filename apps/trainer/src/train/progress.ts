// A one-line progress bar for long work: step, tokens/s, loss, lr and ETA. On a terminal it
// redraws in place; in a log (CI, pipes) it prints a plain line every `logEvery` updates.
// Test: cd apps/trainer && npx vitest run src/train
export interface ProgressFields {
  step: number;
  total: number;
  tokensPerSecond: number;
  loss: number;
  lr: number;
  etaSeconds: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export class ProgressBar {
  private updates = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly logEvery = 10,
  ) {}

  render(f: ProgressFields): string {
    const width = 24;
    const filled = Math.round((width * f.step) / f.total);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    return `step ${String(f.step).padStart(String(f.total).length)}/${f.total} [${bar}] ${f.tokensPerSecond.toFixed(0)} tok/s | loss ${f.loss.toFixed(4)} | lr ${f.lr.toExponential(2)} | ETA ${formatDuration(f.etaSeconds)}`;
  }

  update(f: ProgressFields): void {
    this.updates++;
    const line = this.render(f);
    if (this.stream.isTTY) this.stream.write(`\r${line}\x1b[K`);
    else if (this.updates % this.logEvery === 0 || f.step === f.total) this.stream.write(`${line}\n`);
  }

  /** Prints a message on its own line without breaking the bar. */
  log(message: string): void {
    this.stream.write(this.stream.isTTY ? `\r\x1b[K${message}\n` : `${message}\n`);
  }

  done(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
