// The rendezvous Store over real gRPC on loopback: set/get/add/wait, blocking get, deadlines,
// per-group prefixes, a refused token, and a Store that never appears.
// Test: cd packages/parallel && npx vitest run src/store
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixStore, StoreClient, StoreServer } from './store.js';
import { freePort } from './testing.js';

describe('rendezvous Store', () => {
  let server: StoreServer;
  let client: StoreClient;
  beforeAll(async () => {
    server = await StoreServer.listen('127.0.0.1', 0, 'token-abcdef');
    client = new StoreClient('127.0.0.1', server.port, 'token-abcdef', 5000);
    await client.connect(5000);
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  it('sets and gets bytes', async () => {
    await client.set('a', 'hello');
    expect((await client.get('a')).toString()).toBe('hello');
  });

  it('get waits for a later set', async () => {
    const pending = client.get('late', 5000);
    await new Promise((r) => setTimeout(r, 100));
    await client.set('late', 'now');
    expect((await pending).toString()).toBe('now');
  });

  it('add counts from zero', async () => {
    expect(await client.add('n', 2)).toBe(2);
    expect(await client.add('n', 5)).toBe(7);
    expect(await client.add('n', -1)).toBe(6);
  });

  it('wait returns when every key exists', async () => {
    const pending = client.wait(['w1', 'w2'], 5000);
    await client.set('w1', '1');
    await client.set('w2', '1');
    await expect(pending).resolves.toBeUndefined();
  });

  it('get and wait fail at their deadline naming the missing keys', async () => {
    const started = Date.now();
    await expect(client.get('never', 300)).rejects.toThrow(
      /store get 'never': keys never set within 300 ms: never/,
    );
    await expect(client.wait(['w1', 'nope'], 200)).rejects.toThrow(/within 200 ms: nope/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('keeps groups apart by prefix', async () => {
    const dp = new PrefixStore('dp0', client);
    const tp = new PrefixStore('tp0', client);
    await dp.set('x', 'dp');
    await tp.set('x', 'tp');
    expect([(await dp.get('x')).toString(), (await tp.get('x')).toString()]).toEqual(['dp', 'tp']);
    expect((await client.get('dp0/x')).toString()).toBe('dp');
  });

  it('refuses a wrong token', async () => {
    const intruder = new StoreClient('127.0.0.1', server.port, 'other-token', 2000);
    await expect(intruder.get('a')).rejects.toThrow(/refused: run token mismatch .*GRIN_RUN_TOKEN/);
    intruder.close();
  });

  it('a Store that never appears is a clear error at the deadline', async () => {
    const port = await freePort();
    const lonely = new StoreClient('127.0.0.1', port, 'token-abcdef', 1000);
    await expect(lonely.connect(500)).rejects.toThrow(
      new RegExp(`no rendezvous Store at 127.0.0.1:${port} after 500 ms: rank 0 hosts it`),
    );
    lonely.close();
  });
});
