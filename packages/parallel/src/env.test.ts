// readLaunchEnv against the launchers' conventions: torchrun, Slurm (srun), a single process, and
// each malformed or missing variable with the message that names it.
// Test: cd packages/parallel && npx vitest run src/env
import { describe, expect, it } from 'vitest';
import { readLaunchEnv } from './env.js';

const token = { GRIN_RUN_TOKEN: 'secret-token' };

describe('readLaunchEnv', () => {
  it('reads torchrun variables', () => {
    const env = readLaunchEnv({
      RANK: '3',
      WORLD_SIZE: '4',
      LOCAL_RANK: '1',
      MASTER_ADDR: '10.0.0.5',
      MASTER_PORT: '29500',
      ...token,
    });
    expect(env).toMatchObject({
      rank: 3,
      worldSize: 4,
      localRank: 1,
      masterAddr: '10.0.0.5',
      masterPort: 29500,
      source: 'torchrun',
    });
    expect(env.bindAddr).toBe('127.0.0.1');
  });

  it('reads Slurm variables when torchrun ones are absent', () => {
    const env = readLaunchEnv({
      SLURM_PROCID: '5',
      SLURM_NTASKS: '8',
      SLURM_LOCALID: '1',
      MASTER_ADDR: 'node01',
      MASTER_PORT: '29400',
      ...token,
    });
    expect(env).toMatchObject({ rank: 5, worldSize: 8, localRank: 1, masterAddr: 'node01', source: 'slurm' });
  });

  it('is a world of one without launcher variables', () => {
    expect(readLaunchEnv({})).toMatchObject({ rank: 0, worldSize: 1, source: 'single', token: '' });
  });

  it('binds where told and advertises that address', () => {
    const env = readLaunchEnv({
      RANK: '0',
      WORLD_SIZE: '2',
      MASTER_PORT: '1',
      GRIN_BIND_ADDR: '10.1.2.3',
      ...token,
    });
    expect([env.bindAddr, env.advertiseAddr]).toEqual(['10.1.2.3', '10.1.2.3']);
  });

  it.each([
    [{ RANK: '1', MASTER_PORT: '29500', ...token }, /WORLD_SIZE is missing/],
    [{ RANK: 'x', WORLD_SIZE: '2', MASTER_PORT: '29500', ...token }, /RANK='x' must be an integer >= 0/],
    [{ RANK: '2', WORLD_SIZE: '2', MASTER_PORT: '29500', ...token }, /RANK=2 must be below WORLD_SIZE=2/],
    [{ RANK: '0', WORLD_SIZE: '2', ...token }, /MASTER_PORT is missing/],
    [
      { RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '70000', ...token },
      /MASTER_PORT=70000 must be at most 65535/,
    ],
    [{ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '29500' }, /GRIN_RUN_TOKEN must be set/],
  ])('refuses %o', (vars, message) => {
    expect(() => readLaunchEnv(vars)).toThrow(message);
  });
});
