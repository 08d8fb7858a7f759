import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.base';

// The server bundle; `vite build` (vite.config.ts) then writes the page to dist/web.
export default defineConfig({ ...baseTsup, entry: ['src/index.ts'] });
