// Ranks that die or stop: three ranks as processes over the built package (dist/). Rank 1 is
// SIGKILLed while the others wait for it, or in the middle of 16 MiB all-reduces on the socket data
// plane: ranks 0 and 2 must stop with "rank 1 failed: connection lost" long before their 60 s
// receive timeout (the dead rank's connections close without a goodbye, and that names it). Rank 1
// SIGSTOPped instead (alive, silent, its sockets full): rank 0 times out naming it, and its 64 MiB
// send to it, stuck on a full socket, stops with that failure too; rank 2 (a longer timeout) stops as well.
// Rank 0 aborting in the middle of all-reduces and exiting at once (as a trainer that fails does):
// ranks 1 and 2 stop with its cause, not with the connection or the Store (hosted by rank 0) that
// went with it. This is also what keeps the killed-rank case honest: there rank 0 fails and exits,
// and rank 2 must still name rank 1 even when rank 0's connection goes before rank 1's last bytes are read.
// Test: cd packages/parallel && npm run build && npx vitest run src/faults.test.ts
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from './testing.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
type Mode = 'waiting' | 'busy' | 'stopped' | 'aborting';

const work: Record<Mode, string> = {
  waiting: `if (rank === 1) await new Promise(() => {});
    for (;;) await world.group.allReduce(new Float32Array(1));`,
  busy: `const data = new Float32Array(4 << 20);
    for (;;) await world.group.allReduce(data);`,
  stopped: `if (rank === 1) await new Promise(() => {});
    const results = await Promise.allSettled([
      world.group.send(new Float32Array(16 << 20), 1),
      world.group.recv(new Float32Array(1), 1),
    ]);
    throw new Error(results.map((r) => r.status + ' ' + r.reason?.message).join(' | '));`,
  aborting: `const data = new Float32Array(4 << 20);
    if (rank === 0) setTimeout(() => { world.group.abort('disk full'); process.exit(4); }, 300);
    for (;;) await world.group.allReduce(data);`,
};

function rank(rank: number, port: number, mode: Mode): { child: ChildProcess; out: Promise<string> } {
  // stopped: rank 2 waits longer than rank 0, so rank 0's own timeout always comes first (with equal
  // timeouts rank 2 could time out a moment earlier, and rank 0 would then see rank 2's connection go)
  const timeoutMs = mode === 'stopped' ? (rank === 2 ? 4000 : 2000) : 60_000;
  const script = `
    import { initWorld } from ${JSON.stringify(dist)};
    const rank = ${rank};
    const world = await initWorld({ timeoutMs: ${timeoutMs}, env: { rank, worldSize: 3, localRank: rank,
      masterAddr: '127.0.0.1', masterPort: ${port}, token: 'faults-token', bindAddr: '127.0.0.1',
      advertiseAddr: '127.0.0.1', source: 'torchrun' } });
    await world.group.barrier();
    console.log('ready');
    const started = Date.now();
    try {
      ${work[mode]}
    } catch (error) {
      console.log('after', Date.now() - started, 'ms:', error.message);
      process.exit(3);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return { child, out: new Promise((resolve) => child.on('exit', () => resolve(out))) };
}

/** Runs the three ranks; the victim is signalled 300 ms past the barrier (or, with no signal, ends itself). */
async function runWith(
  mode: Mode,
  signal: NodeJS.Signals | null,
  victimRank = 1,
): Promise<{ outs: string[]; ms: number }> {
  const port = await freePort();
  const ranks = [0, 1, 2].map((r) => rank(r, port, mode));
  const victim = ranks[victimRank]!.child;
  const survivors = ranks.filter((_, r) => r !== victimRank);
  try {
    await new Promise<void>((resolve) =>
      victim.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && resolve()),
    );
    // Past the barrier: the others now wait on the victim or move data with it.
    await new Promise((r) => setTimeout(r, 300));
    const signalledAt = Date.now();
    if (signal) victim.kill(signal);
    const outs = await Promise.all(survivors.map((s) => s.out));
    for (const [i, survivor] of survivors.entries()) expect(survivor.child.exitCode, outs[i]).toBe(3);
    return { outs, ms: Date.now() - signalledAt };
  } finally {
    for (const { child } of ranks) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

describe.skipIf(!existsSync(dist))('ranks that die or stop', () => {
  it.each([
    ['while the others wait for it', 'waiting'],
    ['in the middle of 16 MiB all-reduces', 'busy'],
  ] as const)(
    'rank 1 killed %s: every other rank names it within seconds',
    async (_, mode) => {
      const { outs, ms } = await runWith(mode, 'SIGKILL');
      for (const out of outs) expect(out).toMatch(/^after \d+ ms: rank 1 failed: connection lost \(/m);
      expect(ms).toBeLessThan(15_000);
    },
    90_000,
  );

  it('rank 0 aborts and exits at once: ranks 1 and 2 name its cause, not its lost connections', async () => {
    const { outs, ms } = await runWith('aborting', null, 0);
    for (const out of outs) expect(out).toMatch(/^after \d+ ms: rank 0 failed: disk full$/m);
    expect(ms).toBeLessThan(15_000);
  }, 90_000);

  it('rank 1 stopped: rank 0 times out naming it, its stuck send stops too, and rank 2 stops', async () => {
    const { outs } = await runWith('stopped', 'SIGSTOP');
    const failure = 'rank 0 failed: rank 0: timed out after 2000 ms waiting for rank 1';
    expect(outs[0]).toMatch(
      new RegExp(`^after \\d+ ms: rejected ${failure} .* \\| rejected ${failure}`, 'm'),
    );
  }, 90_000);
});
