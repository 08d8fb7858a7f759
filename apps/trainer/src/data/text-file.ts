// `--data FILE`: a training corpus from one file, either plain text (documents separated by blank
// lines) or JSONL (one {"text": ..., "category"?: ...} object a line; .jsonl/.ndjson, or a file
// whose first line is a JSON object). Errors name the file and line; a binary file (NUL bytes,
// invalid UTF-8) is refused.
// Test: cd apps/trainer && npx vitest run src/data/text-file.test.ts

import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import type { TextDocument } from './brown.js';

export type TextFileFormat = 'text' | 'jsonl';

/** A document of a data file; a JSONL "category" is also its genre, for splitByText. */
export interface TextFileDocument extends TextDocument {
  category?: string;
}

const FORMAT_HINT =
  'expected plain text (documents separated by blank lines) or JSONL (one {"text": "..."} object a line)';

export function detectTextFileFormat(path: string, content: string): TextFileFormat {
  const extension = extname(path).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  if (extension === '.txt' || extension === '.text') return 'text';
  const firstLine = content.split('\n').find((line) => line.trim().length > 0)!;
  if (!firstLine.trimStart().startsWith('{')) return 'text';
  try {
    const value = JSON.parse(firstLine);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? 'jsonl' : 'text';
  } catch {
    return 'text';
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}

export function parseJsonl(path: string, content: string): TextFileDocument[] {
  const stem = basename(path);
  const texts: TextFileDocument[] = [];
  content.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    const where = `${path}:${index + 1}`;
    if (line.length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`${where}: invalid JSON (${(error as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new Error(`${where}: expected an object with a string "text" field, got ${describe(value)}`);
    }
    const record = value as { text?: unknown; category?: unknown };
    if (typeof record.text !== 'string') {
      const got = record.text === undefined ? 'no "text" field' : `"text" is ${describe(record.text)}`;
      throw new Error(`${where}: expected an object with a string "text" field, got ${got}`);
    }
    if (record.category !== undefined && typeof record.category !== 'string') {
      throw new Error(`${where}: "category" must be a string, got ${describe(record.category)}`);
    }
    if (record.text.trim().length === 0) return;
    const document: TextFileDocument = { id: `${stem}:${index + 1}`, text: record.text };
    if (record.category !== undefined) {
      document.category = record.category;
      document.genre = record.category;
      document.genreName = record.category;
    }
    texts.push(document);
  });
  return texts;
}

export function parsePlainText(path: string, content: string): TextFileDocument[] {
  const stem = basename(path);
  return content
    .split(/\n[ \t]*\n/)
    .map((block) => block.replace(/^\n+|\s+$/g, ''))
    .filter((block) => block.trim().length > 0)
    .map((text, index) => ({ id: `${stem}#${index + 1}`, text }));
}

/** UTF-8 text, or an error: a NUL byte or invalid UTF-8 means a binary file, not a corpus. */
export function decodeText(path: string, bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0)
    throw new Error(
      `${path}: looks like a binary file (a NUL byte at offset ${nul}), not training text; ${FORMAT_HINT}`,
    );
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const text = bytes.toString('utf8');
    const line = text.slice(0, text.indexOf('\uFFFD')).split('\n').length;
    throw new Error(
      `${path}:${line}: not valid UTF-8, so not training text (a binary file?); ${FORMAT_HINT}`,
    );
  }
}

/** Reads `--data FILE`. Throws for a missing or empty file and for malformed JSONL lines. */
export function loadTextFile(path: string): TextFileDocument[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`${path}: cannot read the data file (${(error as Error).message})`);
  }
  let content = decodeText(path, bytes);
  content = content.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  if (content.trim().length === 0) throw new Error(`${path}: the data file is empty; ${FORMAT_HINT}`);
  const format = detectTextFileFormat(path, content);
  const texts = format === 'jsonl' ? parseJsonl(path, content) : parsePlainText(path, content);
  if (texts.length === 0) throw new Error(`${path}: no non-empty "text" in any line; ${FORMAT_HINT}`);
  return texts;
}
