// The environment variables Python's huggingface_hub reads, read the same way here.
// Run: cd packages/hub && npx vitest run src/settings
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hubSettings } from './settings.js';

describe('hubSettings', () => {
  it('defaults to huggingface.co and ~/.cache/huggingface/hub', () => {
    const s = hubSettings({ HF_HOME: undefined, HF_TOKEN_PATH: '/nonexistent/token' });
    expect(s).toEqual({
      endpoint: 'https://huggingface.co',
      token: null,
      offline: false,
      cacheDir: join(homedir(), '.cache', 'huggingface', 'hub'),
    });
  });
  it('orders the cache folder HF_HUB_CACHE > HF_HOME/hub > XDG_CACHE_HOME/huggingface/hub', () => {
    expect(hubSettings({ XDG_CACHE_HOME: '/x' }).cacheDir).toBe('/x/huggingface/hub');
    expect(hubSettings({ XDG_CACHE_HOME: '/x', HF_HOME: '/h' }).cacheDir).toBe('/h/hub');
    expect(hubSettings({ HF_HOME: '/h', HF_HUB_CACHE: '/c' }).cacheDir).toBe('/c');
  });
  it('reads HF_ENDPOINT, HF_HUB_OFFLINE and the token (env first, then the login token file)', () => {
    const home = mkdtempSync(join(tmpdir(), 'grin-hf-home-'));
    try {
      writeFileSync(join(home, 'token'), 'hf_stored\n');
      expect(hubSettings({ HF_HOME: home }).token).toBe('hf_stored');
      expect(hubSettings({ HF_HOME: home, HF_TOKEN: 'hf_env' }).token).toBe('hf_env');
      const s = hubSettings({ HF_HOME: home, HF_ENDPOINT: 'http://127.0.0.1:9/', HF_HUB_OFFLINE: 'YES' });
      expect([s.endpoint, s.offline]).toEqual(['http://127.0.0.1:9', true]);
      expect(hubSettings({ HF_HOME: home, HF_HUB_OFFLINE: '0' }).offline).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
