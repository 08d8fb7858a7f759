import { defineConfig } from 'tsup';
import { baseTsup } from '../../tsup.base';

export default defineConfig({ ...baseTsup, entry: ['src/cli.ts'], banner: { js: '#!/usr/bin/env node' } });
