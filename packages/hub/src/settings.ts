// Where and how to reach the Hub, read from the environment the way Python's huggingface_hub
// reads it: HF_ENDPOINT, HF_TOKEN (or the token file `huggingface-cli login` writes),
// HF_HUB_OFFLINE, and the cache folder HF_HUB_CACHE > HF_HOME/hub > XDG_CACHE_HOME/huggingface/hub
// > ~/.cache/huggingface/hub. Test: cd packages/hub && npx vitest run src/settings
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface HubSettings {
  endpoint: string;
  token: string | null;
  offline: boolean;
  cacheDir: string;
}

const TRUE = new Set(['1', 'on', 'yes', 'true']);

function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
}

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const tokenPath = env.HF_TOKEN_PATH ?? join(hfHome(env), 'token');
  const stored = existsSync(tokenPath) ? readFileSync(tokenPath, 'utf8').trim() : '';
  const token = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim() || stored || null;
  return {
    endpoint: (env.HF_ENDPOINT?.trim() || 'https://huggingface.co').replace(/\/+$/, ''),
    token,
    offline: TRUE.has((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase()),
    cacheDir: env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE ?? join(hfHome(env), 'hub'),
  };
}
