// Reading the run's own JSON files (config.json, state.json, manifest.json, the lock) so that a
// torn or corrupt one is named with its line and column instead of a bare SyntaxError.
// Test: cd apps/trainer && npx vitest run src/train/json-file.test.ts
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

export class JsonFileError extends Error {}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Parses `text` as JSON; errors name `path`, the line and the column. */
export function parseJsonText(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /at position (\d+)/.exec(message);
    const offset = at ? Number(at[1]) : /end of JSON input/.test(message) ? text.length : null;
    const where =
      offset === null
        ? ''
        : ` at line ${lineAndColumn(text, offset).line}, column ${lineAndColumn(text, offset).column}`;
    throw new JsonFileError(`${path}: not valid JSON${where} (${message})`);
  }
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new JsonFileError(
      `${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  return parseJsonText(text, path);
}

/** Writes through a temporary file and a rename: a crash leaves the old content or the new. */
export function writeFileAtomic(path: string, text: string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}
