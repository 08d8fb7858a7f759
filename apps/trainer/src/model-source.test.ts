// Hub ids wherever the CLI reads a model, against the loopback Hub of @grin-moe/hub/testing:
// `grin generate --model ORG/NAME` gives what the same model gives from a local directory and a
// second run downloads nothing; --chat / --system render the model's own template; a model too
// big for this machine is refused from config.json before any weight is requested; offline with
// nothing cached names the id; `train --init-from ORG/NAME` becomes the snapshot directory.
// Run: cd apps/trainer && npx vitest run src/model-source
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeHub, startFakeHub } from '@grin-moe/hub/testing';
import { initRandom, loadTokenizer, parseConfig, saveModel, trainBpe } from '@grin-moe/model-grin';
import { Generator } from '@grin-moe/tensor';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateCommand } from './commands/generate.js';
import { resolveInitFrom } from './model-source.js';

const COMMIT = 'c'.repeat(40);
const TEMPLATE =
  '{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}';
// config.json of microsoft/GRIN-MoE (DESIGN.md): 41.9B parameters.
const GRIN_CONFIG = {
  model_type: 'phimoe',
  vocab_size: 32064,
  hidden_size: 4096,
  intermediate_size: 6400,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  max_position_embeddings: 4096,
  sliding_window: 2047,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  attention_bias: true,
  lm_head_bias: true,
  tie_word_embeddings: false,
  hidden_act: 'silu',
  num_local_experts: 16,
  num_experts_per_tok: 2,
};

const root = mkdtempSync(join(tmpdir(), 'grin-model-source-'));
const local = join(root, 'local');
const saved = { ...process.env };
let hub: FakeHub;

function filesOf(dir: string): Record<string, Uint8Array> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
}

beforeAll(async () => {
  const tokenizer = trainBpe(['the cat sat on the mat', 'the dog sat on the log', 'a cat and a dog'], {
    vocabSize: 300,
    minFrequency: 1,
  });
  tokenizer.save(local);
  const configPath = join(local, 'tokenizer_config.json');
  writeFileSync(
    configPath,
    JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), chat_template: TEMPLATE }),
  );
  const config = parseConfig({
    vocab_size: 320,
    hidden_size: 16,
    intermediate_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_local_experts: 3,
    rope_theta: 10000,
    eos_token_id: 2,
  });
  saveModel(local, initRandom(config, new Generator(4)));
  const index = {
    metadata: {},
    weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00017.safetensors' },
  };
  hub = await startFakeHub([
    { type: 'model', name: 'tiny/chat', refs: { main: COMMIT }, commits: { [COMMIT]: filesOf(local) } },
    {
      type: 'model',
      name: 'microsoft/GRIN-MoE',
      refs: { main: COMMIT },
      commits: {
        [COMMIT]: {
          'config.json': new TextEncoder().encode(JSON.stringify(GRIN_CONFIG)),
          'model.safetensors.index.json': new TextEncoder().encode(JSON.stringify(index)),
        },
      },
    },
  ]);
  Object.assign(process.env, { HF_ENDPOINT: hub.url, HF_HOME: join(root, 'hf') });
  delete process.env.HF_HUB_OFFLINE;
  delete process.env.HF_TOKEN;
});
afterAll(async () => {
  process.env = saved;
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

async function generate(argv: string[]): Promise<string> {
  const writes: string[] = [];
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => writes.push(String(chunk)) > 0);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await generateCommand.run(argv)).toBe(0);
    return writes.join('');
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('Hub ids in the CLI', () => {
  it('generate --model ORG/NAME matches the local directory; the second run downloads nothing', async () => {
    const args = ['--prompt', 'the cat', '--max-new-tokens', '6'];
    const reference = await generate(['--model', local, ...args]);
    expect(await generate(['--model', 'tiny/chat', ...args])).toBe(reference);
    expect(hub.downloads('model.safetensors')).toHaveLength(1);
    hub.requests.length = 0;
    expect(await generate(['--model', 'tiny/chat', ...args])).toBe(reference);
    expect(hub.downloads()).toEqual([]);
  });

  it('--chat --system wraps the prompt in the model template, encoded without an extra BOS', async () => {
    const rendered = '<system>Be brief.</s><user>the cat</s><assistant>';
    const ids = loadTokenizer(local).encode(rendered).join(',');
    const expected = await generate(['--model', local, '--prompt-ids', ids, '--max-new-tokens', '6']);
    const tail = (text: string) => text.trim().split(' ').length;
    expect(tail(expected)).toBeGreaterThan(0);
    const chat = await generate([
      '--model',
      'tiny/chat',
      '--prompt',
      'the cat',
      '--system',
      'Be brief.',
      '--max-new-tokens',
      '6',
    ]);
    // Same prompt ids, same greedy continuation: decode the reference ids to compare.
    const tokenizer = loadTokenizer(local);
    expect(chat.trim()).toBe(tokenizer.decode(expected.trim().split(' ').map(Number)).trim());
  });

  it('refuses microsoft/GRIN-MoE on a small machine from config.json alone, before any weight', async () => {
    hub.requests.length = 0;
    await expect(generate(['--model', 'microsoft/GRIN-MoE', '--prompt-ids', '1'])).rejects.toThrow(
      /^generate: microsoft\/GRIN-MoE: needs about \d+\.\d GiB \(41\.\d\dB parameters in f32\)/,
    );
    expect(hub.downloads().map((r) => r.file)).toEqual(['config.json']);
  });

  it('offline with nothing cached names the id; an unknown local path still says what it is not', async () => {
    process.env.HF_HUB_OFFLINE = '1';
    try {
      await expect(generate(['--model', 'tiny/absent', '--prompt-ids', '1'])).rejects.toThrow(
        /^generate: tiny\/absent: the model is not in the cache \(HF_HUB_OFFLINE=1\)/,
      );
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    await expect(generate(['--model', './no/such-dir', '--prompt-ids', '1'])).rejects.toThrow(
      /^generate: \.\/no\/such-dir: .* \(nor a Hub id ORG\/NAME\[@revision\]\)$/,
    );
  });

  it('train --init-from ORG/NAME becomes the snapshot directory', async () => {
    const config = await resolveInitFrom({ data: { initFrom: 'tiny/chat' } });
    expect(config.data.initFrom).toBe(join(root, 'hf', 'hub', 'models--tiny--chat', 'snapshots', COMMIT));
    expect((await resolveInitFrom({ data: { initFrom: local } })).data.initFrom).toBe(local);
  });
});
