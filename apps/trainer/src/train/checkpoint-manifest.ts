// A checkpoint is complete when its manifest.json, written and fsynced last, lists every file of
// the directory with its size and every listed file is there with that size. The checker says what
// is wrong, so that resume can name the damage and fall back to an older checkpoint.
// Test: cd apps/trainer && npx vitest run src/train/checkpoints.test.ts
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseJsonText } from './json-file.js';

export const MANIFEST_FILE = 'manifest.json';

export interface Manifest {
  step: number;
  files: Record<string, number>;
}

/** Lists the files of `dir` (all but the manifest) with their sizes; writes it as manifest.json. */
export function writeManifest(dir: string, step: number): void {
  const files: Record<string, number> = {};
  for (const name of readdirSync(dir).sort())
    if (name !== MANIFEST_FILE) files[name] = statSync(join(dir, name)).size;
  writeFileSync(join(dir, MANIFEST_FILE), `${JSON.stringify({ step, files } satisfies Manifest, null, 2)}\n`);
}

/** null when `dir` is a complete checkpoint, else what is missing or wrong (one line). */
export function checkpointProblem(dir: string): string | null {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) return `no ${MANIFEST_FILE} (the write did not finish)`;
  let manifest: Manifest;
  try {
    manifest = parseJsonText(readFileSync(path, 'utf8'), path) as Manifest;
  } catch (error) {
    return (error as Error).message;
  }
  if (typeof manifest?.files !== 'object' || manifest.files === null)
    return `${path}: expected {"step", "files": {name: bytes}}`;
  for (const [name, size] of Object.entries(manifest.files)) {
    let actual: number;
    try {
      actual = statSync(join(dir, name)).size;
    } catch {
      return `${name} is missing (listed in ${MANIFEST_FILE} with ${size} bytes)`;
    }
    if (actual !== size) return `${name} has ${actual} bytes, ${MANIFEST_FILE} says ${size}`;
  }
  return null;
}
