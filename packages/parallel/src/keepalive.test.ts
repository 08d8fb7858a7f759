// A rank whose event loop is blocked (a long synchronous forward, backward or validation) keeps its
// connections: two processes over the built package (dist/), rank 1 busy for 25 s, then an
// all-reduce. With 10 s keepalive pings and timeouts this failed: "connection lost (Connection dropped)".
// Test: cd packages/parallel && npm run build && npx vitest run src/keepalive.test.ts
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from './testing.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const blockMs = 25_000;

function rank(rank: number, port: number): Promise<{ code: number | null; out: string }> {
  const script = `
    import { initWorld } from ${JSON.stringify(dist)};
    const world = await initWorld({ timeoutMs: 60000, env: { rank: ${rank}, worldSize: 2, localRank: ${rank},
      masterAddr: '127.0.0.1', masterPort: ${port}, token: 'keepalive-token', bindAddr: '127.0.0.1',
      advertiseAddr: '127.0.0.1', source: 'torchrun' } });
    await world.group.barrier();
    if (${rank} === 1) for (const end = Date.now() + ${blockMs}; Date.now() < end; );
    const x = Float32Array.of(${rank} + 1);
    await world.group.allReduce(x);
    console.log('sum', x[0]);
    await world.close();`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe.skipIf(!existsSync(dist))('keepalive across processes', () => {
  it('a rank busy for 25 s without yielding still all-reduces with its peer', async () => {
    const port = await freePort();
    const results = await Promise.all([rank(0, port), rank(1, port)]);
    for (const r of results) {
      expect(r.out).toContain('sum 3');
      expect(r.code, r.out).toBe(0);
    }
  }, 90_000);
});
