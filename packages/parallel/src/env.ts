// Where this process sits in the run, read from the launcher's environment: torchrun's MASTER_ADDR,
// MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, or Slurm's SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
// (so srun and Kubernetes indexed Jobs need no wrapper), the run token GRIN_RUN_TOKEN and the bind
// address GRIN_BIND_ADDR (loopback unless given). Test: cd packages/parallel && npx vitest run src/env.test.ts
import { networkInterfaces } from 'node:os';
import { ParallelError } from './errors.js';

export interface LaunchEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  /** Where rank 0 serves the rendezvous Store. */
  masterAddr: string;
  masterPort: number;
  /** Shared secret every peer must present ('' only when worldSize is 1). */
  token: string;
  /** Interface the Store and the peer servers listen on (default 127.0.0.1). */
  bindAddr: string;
  /** Host other ranks use to reach this one's peer server. */
  advertiseAddr: string;
  /** Where the values came from, for messages: 'torchrun', 'slurm' or 'single'. */
  source: 'torchrun' | 'slurm' | 'single';
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, min: number): number {
  const raw = env[name]!;
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < min)
    throw new ParallelError(`environment: ${name}='${raw}' must be an integer >= ${min}`);
  return n;
}

/** Reads the launch environment; a process with none of the variables is a world of one. */
export function readLaunchEnv(env: Env = process.env): LaunchEnv {
  const torchrun = env.RANK !== undefined || env.WORLD_SIZE !== undefined;
  const slurm = !torchrun && env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined;
  const pick = (a: string, b: string) => (torchrun ? a : b);
  let rank = 0;
  let worldSize = 1;
  let localRank = 0;
  if (torchrun || slurm) {
    const rankName = pick('RANK', 'SLURM_PROCID');
    const sizeName = pick('WORLD_SIZE', 'SLURM_NTASKS');
    for (const name of [rankName, sizeName])
      if (env[name] === undefined)
        throw new ParallelError(`environment: ${name} is missing (${rankName} and ${sizeName} go together)`);
    rank = integer(env, rankName, 0);
    worldSize = integer(env, sizeName, 1);
    const localName = pick('LOCAL_RANK', 'SLURM_LOCALID');
    localRank = env[localName] !== undefined ? integer(env, localName, 0) : 0;
    if (rank >= worldSize)
      throw new ParallelError(`environment: ${rankName}=${rank} must be below ${sizeName}=${worldSize}`);
  }
  const bindAddr = env.GRIN_BIND_ADDR || '127.0.0.1';
  const masterAddr = env.MASTER_ADDR || '127.0.0.1';
  if (worldSize > 1 && env.MASTER_PORT === undefined)
    throw new ParallelError(
      `environment: MASTER_PORT is missing; rank ${rank} of ${worldSize} needs MASTER_ADDR:MASTER_PORT of rank 0's Store`,
    );
  const masterPort = env.MASTER_PORT !== undefined ? integer(env, 'MASTER_PORT', 1) : 0;
  if (masterPort > 65535)
    throw new ParallelError(`environment: MASTER_PORT=${masterPort} must be at most 65535`);
  const token = env.GRIN_RUN_TOKEN ?? '';
  if (worldSize > 1 && token.length < 8)
    throw new ParallelError(
      `environment: GRIN_RUN_TOKEN must be set to the same secret (8+ characters) on every rank of a ${worldSize}-rank run` +
        `${token ? ` (got ${token.length} characters)` : ''}; e.g. GRIN_RUN_TOKEN=$(openssl rand -hex 16)`,
    );
  return {
    rank,
    worldSize,
    localRank,
    masterAddr,
    masterPort,
    token,
    bindAddr,
    advertiseAddr: env.GRIN_ADVERTISE_ADDR || advertisedHost(bindAddr),
    source: torchrun ? 'torchrun' : slurm ? 'slurm' : 'single',
  };
}

/** A wildcard bind advertises the first external IPv4 address; otherwise the bind address itself. */
function advertisedHost(bindAddr: string): string {
  if (bindAddr !== '0.0.0.0' && bindAddr !== '::') return bindAddr;
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}
