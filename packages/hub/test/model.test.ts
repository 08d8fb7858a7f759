// fetchModel against the loopback Hub (src/fake-hub.ts): the cache layout Python's huggingface_hub
// writes and reads, downloads of only the needed files, a second run that downloads nothing, a
// resumed interruption, revision pins, offline mode, a missing file, 401 without a token, a
// truncated shard, and the refusal hook that runs before any weights are fetched.
// Run: cd packages/hub && npx vitest run test/model
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchModel } from '../src/model-files.js';
import { silentProgress } from '../src/progress.js';
import { hubSettings } from '../src/settings.js';
import { type FakeHub, safetensorsBytes, startFakeHub } from '../src/testing.js';

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
const bytes = (text: string) => new TextEncoder().encode(text);
const config = (layers: number) => bytes(JSON.stringify({ model_type: 'phimoe', num_hidden_layers: layers }));
const shard1 = safetensorsBytes('a', 3000);
const shard2 = safetensorsBytes('b', 2000, 0.5);
const index = bytes(
  JSON.stringify({
    metadata: {},
    weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
  }),
);
const truncated = safetensorsBytes('t', 500).subarray(0, 1200);

let hub: FakeHub;
const homes: string[] = [];
function home(extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'grin-hub-'));
  homes.push(dir);
  return { HF_HOME: dir, HF_ENDPOINT: hub.url, ...extra };
}
const quiet = (env: Record<string, string>) => ({
  settings: hubSettings(env),
  progress: silentProgress,
  log: () => {},
});

beforeAll(async () => {
  hub = await startFakeHub([
    {
      type: 'model',
      name: 'tiny/moe',
      refs: { main: C2, v1: C1 },
      commits: {
        [C1]: {
          'config.json': config(1),
          'model.safetensors': safetensorsBytes('w', 10),
          'README.md': bytes('# v1'),
        },
        [C2]: {
          'config.json': config(2),
          'tokenizer.json': bytes('{"model":{}}'),
          'tokenizer_config.json': bytes('{"chat_template":"x"}'),
          'model.safetensors.index.json': index,
          'model-00001-of-00002.safetensors': shard1,
          'model-00002-of-00002.safetensors': shard2,
          'pytorch_model.bin': new Uint8Array(5000),
          'README.md': bytes('# tiny'),
        },
      },
    },
    {
      type: 'model',
      name: 'tiny/private',
      refs: { main: C1 },
      token: 'hf_secret',
      commits: { [C1]: { 'config.json': config(1), 'model.safetensors': shard2 } },
    },
    {
      type: 'model',
      name: 'tiny/holes',
      refs: { main: C1 },
      commits: {
        [C1]: {
          'config.json': config(1),
          'model.safetensors.index.json': index,
          'model-00001-of-00002.safetensors': shard1,
        },
      },
    },
    {
      type: 'model',
      name: 'tiny/cut',
      refs: { main: C1 },
      commits: { [C1]: { 'config.json': config(1), 'model.safetensors': truncated } },
    },
    {
      type: 'model',
      name: 'tiny/bin-only',
      refs: { main: C1 },
      commits: { [C1]: { 'config.json': config(1), 'pytorch_model.bin': new Uint8Array(2000) } },
    },
  ]);
});
afterAll(async () => {
  await hub.close();
  for (const dir of homes) rmSync(dir, { recursive: true, force: true });
});

const repoFolder = (env: { HF_HOME: string }) => join(env.HF_HOME, 'hub', 'models--tiny--moe');

describe('fetchModel', () => {
  it('downloads only config, tokenizer and the indexed shards into the huggingface_hub cache layout', async () => {
    const env = home();
    hub.requests.length = 0;
    const model = await fetchModel('tiny/moe', quiet(env));
    expect(model.commit).toBe(C2);
    expect(model.dir).toBe(join(repoFolder(env), 'snapshots', C2));
    expect(readFileSync(join(repoFolder(env), 'refs', 'main'), 'utf8')).toBe(C2);
    for (const [file, data] of [
      ['config.json', config(2)],
      ['model-00001-of-00002.safetensors', shard1],
      ['model-00002-of-00002.safetensors', shard2],
    ] as const) {
      const path = join(model.dir, file);
      expect(lstatSync(path).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path)).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      expect(new Uint8Array(readFileSync(path))).toEqual(data);
    }
    expect(existsSync(join(model.dir, 'README.md'))).toBe(false);
    expect(existsSync(join(model.dir, 'pytorch_model.bin'))).toBe(false);
    expect(hub.downloads().length).toBe(6); // config, 2 tokenizer files, index, 2 shards
    expect(hub.downloads('pytorch_model.bin')).toEqual([]);

    // Second run: one API call for the revision, no file bytes.
    hub.requests.length = 0;
    expect((await fetchModel('tiny/moe', quiet(env))).dir).toBe(model.dir);
    expect(hub.downloads()).toEqual([]);
    expect(hub.requests.map((r) => r.path)).toEqual(['/api/models/tiny/moe/revision/main']);
  });

  it('resumes an interrupted download with a Range request and never shows the partial file', async () => {
    const env = home();
    const shard = 'model-00001-of-00002.safetensors';
    hub.cutOnce(shard, 5000);
    await expect(fetchModel('tiny/moe', quiet(env))).rejects.toThrow(
      /tiny\/moe\/model-00001-of-00002\.safetensors: download interrupted after 5\.0 kB of 12\.1 kB .*next run resumes/,
    );
    const snapshot = join(repoFolder(env), 'snapshots', C2);
    expect(existsSync(join(snapshot, shard))).toBe(false);
    const blobs = join(repoFolder(env), 'blobs');
    const partial = `${join(blobs, hub.downloads(shard).at(-1)!.path.slice('/cdn/'.length))}.incomplete`;
    expect(readFileSync(partial).length).toBe(5000);

    hub.requests.length = 0;
    const model = await fetchModel('tiny/moe', quiet(env));
    expect(hub.downloads(shard).map((r) => r.range)).toEqual(['bytes=5000-']);
    expect(new Uint8Array(readFileSync(join(model.dir, shard)))).toEqual(shard1);
    expect(existsSync(partial)).toBe(false);
  });

  it('pins a revision by tag or commit; a cached commit needs no request at all', async () => {
    const env = home();
    const tagged = await fetchModel('tiny/moe@v1', quiet(env));
    expect(tagged.commit).toBe(C1);
    expect(JSON.parse(readFileSync(join(tagged.dir, 'config.json'), 'utf8')).num_hidden_layers).toBe(1);
    expect(readFileSync(join(repoFolder(env), 'refs', 'v1'), 'utf8')).toBe(C1);
    expect(existsSync(join(repoFolder(env), 'refs', 'main'))).toBe(false);
    hub.requests.length = 0;
    const pinned = await fetchModel(`tiny/moe@${C1}`, quiet({ ...env, HF_HUB_OFFLINE: '1' }));
    expect(pinned.dir).toBe(tagged.dir);
    expect(hub.requests).toEqual([]);
  });

  it('offline (HF_HUB_OFFLINE=1) reads the cache without a request, and names the id when it is not cached', async () => {
    const env = home();
    await fetchModel('tiny/moe', quiet(env));
    hub.requests.length = 0;
    const offline = quiet({ ...env, HF_HUB_OFFLINE: '1' });
    expect((await fetchModel('tiny/moe', offline)).commit).toBe(C2);
    expect(hub.requests).toEqual([]);
    await expect(fetchModel('tiny/other', offline)).rejects.toThrow(
      /^tiny\/other: the model is not in the cache \(HF_HUB_OFFLINE=1\); looked in .*models--tiny--other/,
    );
    await expect(fetchModel('tiny/moe@v1', offline)).rejects.toThrow(
      /^tiny\/moe@v1: the model is not in the cache/,
    );
    expect(hub.requests).toEqual([]);
  });

  it('uses a snapshot laid out by Python huggingface_hub as it is', async () => {
    const env = home();
    const folder = repoFolder(env);
    // What hf_hub_download leaves: blobs named by etag, refs/main, relative links in snapshots/.
    mkdirSync(join(folder, 'blobs'), { recursive: true });
    mkdirSync(join(folder, 'refs'));
    mkdirSync(join(folder, 'snapshots', C1), { recursive: true });
    writeFileSync(join(folder, 'refs', 'main'), C1);
    const files = { 'config.json': config(7), 'model.safetensors': safetensorsBytes('w', 10) };
    for (const [name, data] of Object.entries(files)) {
      writeFileSync(join(folder, 'blobs', `etag-${name}`), data);
      symlinkSync(`../../blobs/etag-${name}`, join(folder, 'snapshots', C1, name));
    }
    hub.requests.length = 0;
    const model = await fetchModel('tiny/moe', quiet({ ...env, HF_HUB_OFFLINE: 'true' }));
    expect(JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8')).num_hidden_layers).toBe(7);
    expect(hub.requests).toEqual([]);
  });

  it('a missing shard, a missing repository, .bin-only weights: each error names what is missing', async () => {
    const env = home();
    await expect(fetchModel('tiny/holes', quiet(env))).rejects.toThrow(
      `tiny/holes: the repository has no file 'model-00002-of-00002.safetensors' at ${C1}`,
    );
    await expect(fetchModel('tiny/nothing', quiet(env))).rejects.toThrow(
      "tiny/nothing: no such model or revision 'main' on the Hub (HTTP 404)",
    );
    await expect(fetchModel('tiny/moe@v9', quiet(env))).rejects.toThrow(/no such model or revision 'v9'/);
    await expect(fetchModel('tiny/bin-only', quiet(env))).rejects.toThrow(
      'tiny/bin-only: no safetensors weights (model.safetensors or model.safetensors.index.json) at ' +
        `${C1}; it has pytorch_model.bin, which are not read here`,
    );
  });

  it('401 without a token says to set HF_TOKEN; the token is sent and accepted', async () => {
    await expect(fetchModel('tiny/private', quiet(home()))).rejects.toThrow(
      'tiny/private: the Hub answered HTTP 401 without a token: the repository is private, gated or does not exist; set HF_TOKEN',
    );
    await expect(fetchModel('tiny/private', quiet(home({ HF_TOKEN: 'hf_wrong' })))).rejects.toThrow(
      /refused the token \(HTTP 401\)/,
    );
    const model = await fetchModel('tiny/private', quiet(home({ HF_TOKEN: 'hf_secret' })));
    expect(new Uint8Array(readFileSync(join(model.dir, 'model.safetensors')))).toEqual(shard2);
  });

  it('refuses a truncated shard, naming the file, and leaves no file at its snapshot path', async () => {
    const env = home();
    await expect(fetchModel('tiny/cut', quiet(env))).rejects.toThrow(
      /^tiny\/cut\/model\.safetensors: truncated safetensors file: its tensors need 2\d{3} bytes but the file has 1200/,
    );
    expect(
      existsSync(join(env.HF_HOME, 'hub', 'models--tiny--cut', 'snapshots', C1, 'model.safetensors')),
    ).toBe(false);
  });

  it('runs beforeWeights after config.json is local and before any weight byte is fetched', async () => {
    const env = home();
    hub.requests.length = 0;
    await expect(
      fetchModel('tiny/moe', {
        ...quiet(env),
        beforeWeights: (dir) => {
          const layers = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).num_hidden_layers;
          throw new Error(`too big: ${layers} layers`);
        },
      }),
    ).rejects.toThrow('too big: 2 layers');
    expect(hub.downloads().map((r) => r.path.split('/').at(-1))).toEqual([
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });
});
