// `grin train --resume` takes the run's saved config.json, not the command line's: a flag or a
// --config field that conflicts with the run (data, router, model shape, seed, ...) is refused
// naming both values; only RESUMABLE fields may change (more steps, a time budget, eval and
// checkpoint cadence, the device). Test: cd apps/trainer && npx vitest run src/train/resume-config.test.ts
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, defaultTrainConfig, mergeConfig, type TrainConfig, validateConfig } from './config.js';
import { readJsonFile } from './json-file.js';

/** Fields that may differ from the saved config on resume; README.md documents them. */
export const RESUMABLE = new Set([
  'optim.steps',
  'timeBudgetSeconds',
  'eval.every',
  'checkpoint.every',
  'checkpoint.keep',
  'device',
]);

/** Fields that name the run rather than describe it. */
const IDENTITY = new Set(['run.out', 'run.name']);

/** One explicitly given setting: where it came from (a flag or a file) and the config field. */
export interface Setting {
  origin: string;
  field: string;
  value: unknown;
}

/** The leaves of a partial config ({model: {router: 'x'}} -> model.router = 'x'). */
export function settingsOf(patch: unknown, origin: string): Setting[] {
  if (patch === null || typeof patch !== 'object') return [];
  return Object.entries(patch as Record<string, unknown>).flatMap(([key, value]) =>
    value !== null && typeof value === 'object' && !Array.isArray(value)
      ? Object.entries(value as Record<string, unknown>).map(([field, v]) => ({
          origin,
          field: `${key}.${field}`,
          value: v,
        }))
      : [{ origin, field: key, value }],
  );
}

function valueAt(config: TrainConfig, field: string): unknown {
  return field.split('.').reduce<unknown>((at, key) => (at as Record<string, unknown>)?.[key], config);
}

const show = (value: unknown) => JSON.stringify(value);

/** The saved config of `runDir`, validated, or null when the run has none yet. */
export function readSavedConfig(runDir: string): { config: TrainConfig; path: string } | null {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) return null;
  const config = validateConfig(mergeConfig(defaultTrainConfig, readJsonFile(path), path), path);
  return { config, path };
}

/** The saved config with the resumable settings applied; throws naming every conflict. */
export function resumeConfig(saved: TrainConfig, savedPath: string, settings: Setting[]): TrainConfig {
  const conflicts: string[] = [];
  const allowed: Record<string, Record<string, unknown>> = {};
  const top: Record<string, unknown> = {};
  for (const { origin, field, value } of settings) {
    if (IDENTITY.has(field)) continue;
    if (RESUMABLE.has(field)) {
      const [section, key] = field.split('.');
      if (key === undefined) top[section!] = value;
      else (allowed[section!] ??= {})[key] = value;
      continue;
    }
    const before = valueAt(saved, field);
    if (show(before) !== show(value))
      conflicts.push(`${origin} sets ${field} to ${show(value)}, but the run has ${show(before)}`);
  }
  if (conflicts.length)
    throw new ConfigError(
      `train --resume: ${conflicts.join('; ')} (${savedPath}). Resume takes the run's config; only ${[...RESUMABLE].join(', ')} may change. Drop the conflicting flags, or start a new run with --name`,
    );
  const merged = mergeConfig(saved, { ...allowed, ...top }, 'command line');
  return validateConfig(merged, `${savedPath} + command line`);
}

/** Fields (outside RESUMABLE) where `requested` differs from the run's saved config. */
export function configConflicts(saved: TrainConfig, requested: TrainConfig): string[] {
  return settingsOf(requested, 'the requested config')
    .filter(({ field }) => !RESUMABLE.has(field) && !IDENTITY.has(field))
    .filter(({ field, value }) => show(valueAt(saved, field)) !== show(value))
    .map(
      ({ field, value }) => `${field}: the run has ${show(valueAt(saved, field))}, requested ${show(value)}`,
    );
}
