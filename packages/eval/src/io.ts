// File input and JSON output shared by every analysis: JSONL records with their line numbers (so
// errors name file:line), plain text or JSONL {"text", "category"?} documents, and writing a
// result object as pretty JSON (parent folders created). Errors are EvaluationError with a clear message.
// Test: cd packages/eval && npx vitest run src/io
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';

export class EvaluationError extends Error {}

export interface JsonlRecord {
  value: Record<string, unknown>;
  /** 1-based line number in the file, for messages of the form file:line. */
  line: number;
}

function readText(path: string, what: string): string {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new EvaluationError(
      `${path}: cannot read the ${what}${code === 'ENOENT' ? ' (no such file)' : ` (${(error as Error).message})`}`,
    );
  }
  content = content.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  if (content.trim().length === 0) throw new EvaluationError(`${path}: the ${what} is empty`);
  return content;
}

/** Every non-blank line of a JSONL file as an object; a bad line throws naming file:line. */
export function readJsonl(path: string, what = 'JSONL file'): JsonlRecord[] {
  const records: JsonlRecord[] = [];
  readText(path, what)
    .split('\n')
    .forEach((raw, index) => {
      const text = raw.trim();
      if (!text) return;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new EvaluationError(`${path}:${index + 1}: invalid JSON (${(error as Error).message})`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new EvaluationError(
          `${path}:${index + 1}: expected a JSON object a line, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
        );
      }
      records.push({ value: value as Record<string, unknown>, line: index + 1 });
    });
  return records;
}

export interface TextDocument {
  text: string;
  category?: string;
  /** Where it came from: file:line (JSONL) or file#paragraph (plain text). */
  source: string;
}

function looksLikeJsonl(path: string, content: string): boolean {
  const extension = extname(path).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return true;
  if (extension === '.txt' || extension === '.text') return false;
  return content.trimStart().startsWith('{');
}

/**
 * Documents of a text file (paragraphs separated by blank lines) or of a JSONL file with a string
 * "text" and an optional string "category" on every line.
 */
export function readDocuments(path: string): TextDocument[] {
  const content = readText(path, 'text file');
  if (!looksLikeJsonl(path, content)) {
    return content
      .split(/\n[ \t]*\n/)
      .map((block) => block.trim())
      .filter(Boolean)
      .map((text, i) => ({ text, source: `${path}#${i + 1}` }));
  }
  const docs: TextDocument[] = [];
  for (const { value, line } of readJsonl(path, 'text file')) {
    if (typeof value.text !== 'string') {
      throw new EvaluationError(
        `${path}:${line}: expected a string "text" field (JSONL documents are {"text": "...", "category"?: "..."})`,
      );
    }
    if (value.category !== undefined && typeof value.category !== 'string') {
      throw new EvaluationError(
        `${path}:${line}: "category" must be a string, got ${JSON.stringify(value.category)}`,
      );
    }
    if (!value.text.trim()) continue;
    docs.push({
      text: value.text,
      ...(value.category !== undefined ? { category: value.category as string } : {}),
      source: `${path}:${line}`,
    });
  }
  if (!docs.length) throw new EvaluationError(`${path}: no non-empty "text" in any line`);
  return docs;
}

/** Writes value as pretty JSON (creating the folder) and returns it. */
export function writeJson<T>(path: string, value: T): T {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    path,
    `${JSON.stringify(value, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  return value;
}
