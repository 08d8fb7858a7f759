// loadTextFile for `--data FILE`: plain text split on blank lines, JSONL with optional category,
// format detection, and each error message (file and line named).
// Run: cd apps/trainer && npx vitest run src/data/text-file.test.ts

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { splitByText } from './brown.js';
import { detectTextFileFormat, loadTextFile } from './text-file.js';

const dir = mkdtempSync(join(tmpdir(), 'text-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('loadTextFile', () => {
  it('splits plain text into documents at blank lines', () => {
    const path = file('story.txt', 'First doc,\nline two.\n\n\nSecond doc.\r\n \r\nThird\tdoc.\n');
    expect(loadTextFile(path)).toEqual([
      { id: 'story.txt#1', text: 'First doc,\nline two.' },
      { id: 'story.txt#2', text: 'Second doc.' },
      { id: 'story.txt#3', text: 'Third\tdoc.' },
    ]);
  });

  it('reads JSONL with an optional category, skipping blank lines and empty texts', () => {
    const lines = ['{"text": "One.", "category": "news"}', '', '{"text": "Two.\\nMore."}', '{"text": "  "}'];
    const texts = loadTextFile(file('data.jsonl', lines.join('\n')));
    expect(texts).toEqual([
      { id: 'data.jsonl:1', text: 'One.', category: 'news', genre: 'news', genreName: 'news' },
      { id: 'data.jsonl:3', text: 'Two.\nMore.' },
    ]);
    expect(splitByText(texts, { validationFraction: 0.5 }).train.length).toBeGreaterThan(0);
  });

  it('detects JSONL by content when the extension says nothing', () => {
    expect(detectTextFileFormat('data', '{"text": "a"}\n{"text": "b"}\n')).toBe('jsonl');
    expect(detectTextFileFormat('notes', '{braces} in prose\n')).toBe('text');
    expect(detectTextFileFormat('notes.txt', '{"text": "a"}\n')).toBe('text');
    expect(loadTextFile(file('data', '{"text": "a"}\n{"text": "b"}\n'))).toEqual([
      { id: 'data:1', text: 'a' },
      { id: 'data:2', text: 'b' },
    ]);
  });

  it('names the file and line of bad JSON', () => {
    const path = file('bad.jsonl', '{"text": "ok"}\n{"text": oops}\n');
    expect(() => loadTextFile(path)).toThrow(new RegExp(`^${path}:2: invalid JSON \\(`));
  });

  it('names the file and line of a record without text', () => {
    const path = file('notext.jsonl', '{"text": "ok"}\n{"body": "x"}\n');
    expect(() => loadTextFile(path)).toThrow(
      `${path}:2: expected an object with a string "text" field, got no "text" field`,
    );
    const numeric = file('numeric.jsonl', '{"text": 5}\n');
    expect(() => loadTextFile(numeric)).toThrow(
      `${numeric}:1: expected an object with a string "text" field, got "text" is number 5`,
    );
    const array = file('array.jsonl', '["text"]\n');
    expect(() => loadTextFile(array)).toThrow(
      `${array}:1: expected an object with a string "text" field, got an array`,
    );
    const category = file('category.jsonl', '{"text": "a", "category": 3}\n');
    expect(() => loadTextFile(category)).toThrow(`${category}:1: "category" must be a string, got number 3`);
  });

  it('rejects an empty or missing file', () => {
    const empty = file('empty.txt', '  \n\n');
    expect(() => loadTextFile(empty)).toThrow(`${empty}: the data file is empty; expected plain text`);
    const blanks = file('blanks.jsonl', '{"text": ""}\n');
    expect(() => loadTextFile(blanks)).toThrow(`${blanks}: no non-empty "text" in any line`);
    const missing = join(dir, 'missing.txt');
    expect(() => loadTextFile(missing)).toThrow(`${missing}: cannot read the data file (ENOENT`);
  });
});
