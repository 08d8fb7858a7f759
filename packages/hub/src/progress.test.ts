// The per-file progress bar: its rendering, and start/end lines (no redraws) on a pipe.
// Run: cd packages/hub && npx vitest run src/progress
import { describe, expect, it } from 'vitest';
import { formatBytes, progressBar, renderBar } from './progress.js';

describe('progress', () => {
  it('renders sizes and a bar', () => {
    expect([formatBytes(999), formatBytes(1500), formatBytes(2.5e9)]).toEqual(['999 B', '1.5 kB', '2.5 GB']);
    expect(renderBar('m.safetensors', 1.2e9, 2.4e9, 3.5e7, 10)).toBe(
      'm.safetensors  [#####-----]  50%  1.2 GB / 2.4 GB  35.0 MB/s',
    );
  });
  it('writes one line at the start and one at the end when stderr is not a terminal', () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
    const bar = progressBar(stream);
    bar.start('a.bin', 3000, 1000);
    for (let i = 0; i < 20; i++) bar.advance(100);
    bar.end(true);
    expect(lines).toEqual([
      'downloading a.bin (3.0 kB, resuming at 1.0 kB)\n',
      'downloaded a.bin (3.0 kB)\n',
    ]);
  });
});
