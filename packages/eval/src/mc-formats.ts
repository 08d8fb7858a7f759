// Multiple-choice task files in three JSONL shapes, turned into one item form {query, choices,
// gold} and prompts as EleutherAI's lm-evaluation-harness writes them: HellaSwag {ctx, endings,
// label} (query = ctx, choice = " " + ending), ARC {question, choices: {text, label}, answerKey}
// ("Question: ...\nAnswer:", " " + text), MMLU {question, choices[4], answer (index or letter),
// subject?} (lettered options, the choice is " A".." D"). Test: npx vitest run src/mc
import type { Generator } from '@grin-moe/tensor';
import { EvaluationError, type JsonlRecord, readJsonl } from './io.js';

export type McFormat = 'hellaswag' | 'arc' | 'mmlu';
export const MC_FORMATS: readonly McFormat[] = ['hellaswag', 'arc', 'mmlu'];

export interface McItem {
  /** file:line */
  id: string;
  format: McFormat;
  /** The text before a choice; a shot is query + choices[gold]. */
  query: string;
  /** Continuations, each with its leading space. */
  choices: string[];
  gold: number;
  subject?: string;
}

const SHAPE: Record<McFormat, string> = {
  hellaswag: 'HellaSwag {"ctx", "endings": [...], "label"}',
  arc: 'ARC {"question", "choices": {"text": [...], "label": [...]}, "answerKey"}',
  mmlu: 'MMLU {"question", "choices": [...], "answer"}',
};
const SHAPES = `${SHAPE.hellaswag}, ${SHAPE.arc} or ${SHAPE.mmlu}`;

export function detectFormat(value: Record<string, unknown>): McFormat | null {
  if ('endings' in value && 'ctx' in value) return 'hellaswag';
  const choices = value.choices;
  if (
    'question' in value &&
    choices &&
    typeof choices === 'object' &&
    !Array.isArray(choices) &&
    'answerKey' in value
  )
    return 'arc';
  if ('question' in value && Array.isArray(choices) && 'answer' in value) return 'mmlu';
  return null;
}

const isStrings = (v: unknown, min = 2): v is string[] =>
  Array.isArray(v) && v.length >= min && v.every((s) => typeof s === 'string');
const LETTERS = 'ABCDEFGHIJ';

function parseIndex(value: unknown, count: number): number | null {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < count ? n : null;
}

/** One record as an item; errors name file:line and the field. */
export function parseItem(record: JsonlRecord, file: string, format: McFormat): McItem {
  const where = `${file}:${record.line}`;
  const v = record.value;
  const fail = (what: string): never => {
    throw new EvaluationError(`${where}: ${what}; expected ${SHAPE[format]}`);
  };
  const id = where;
  if (format === 'hellaswag') {
    if (typeof v.ctx !== 'string') fail('"ctx" must be a string');
    if (!isStrings(v.endings)) fail('"endings" must be an array of at least 2 strings');
    const endings = v.endings as string[];
    const gold = parseIndex(v.label, endings.length);
    if (gold === null)
      fail(
        `"label" must be an index into endings (0..${endings.length - 1}), got ${JSON.stringify(v.label)}`,
      );
    return {
      id,
      format,
      query: (v.ctx as string).trim(),
      choices: endings.map((e) => ` ${e.trim()}`),
      gold: gold!,
    };
  }
  if (typeof v.question !== 'string') fail('"question" must be a string');
  const question = (v.question as string).trim();
  if (format === 'arc') {
    const choices = v.choices as { text?: unknown; label?: unknown };
    if (!isStrings(choices.text)) fail('"choices.text" must be an array of at least 2 strings');
    const texts = choices.text as string[];
    if (!isStrings(choices.label) || (choices.label as string[]).length !== texts.length)
      fail('"choices.label" must be an array of strings, one per choices.text');
    const gold = (choices.label as string[]).indexOf(String(v.answerKey));
    if (gold < 0)
      fail(
        `"answerKey" ${JSON.stringify(v.answerKey)} is not one of choices.label ${JSON.stringify(choices.label)}`,
      );
    return {
      id,
      format,
      query: `Question: ${question}\nAnswer:`,
      choices: texts.map((t) => ` ${t.trim()}`),
      gold,
    };
  }
  if (!isStrings(v.choices) || (v.choices as string[]).length > LETTERS.length)
    fail(`"choices" must be an array of 2..${LETTERS.length} strings`);
  const texts = v.choices as string[];
  const letter = typeof v.answer === 'string' ? LETTERS.indexOf(v.answer.trim().toUpperCase()) : -1;
  const gold =
    letter >= 0 && letter < texts.length && (v.answer as string).trim().length === 1
      ? letter
      : parseIndex(v.answer, texts.length);
  if (gold === null)
    fail(
      `"answer" must be an index into choices (0..${texts.length - 1}) or a letter, got ${JSON.stringify(v.answer)}`,
    );
  const options = texts.map((t, i) => `${LETTERS[i]}. ${t.trim()}`).join('\n');
  const item: McItem = {
    id,
    format,
    query: `${question}\n${options}\nAnswer:`,
    choices: texts.map((_, i) => ` ${LETTERS[i]}`),
    gold: gold!,
  };
  if (typeof v.subject === 'string') item.subject = v.subject;
  return item;
}

/** Items of a task file; the format is detected from the first line unless given, and every line must match it. */
export function readMcFile(file: string, format?: McFormat): { format: McFormat; items: McItem[] } {
  if (format !== undefined && !MC_FORMATS.includes(format)) {
    throw new EvaluationError(`unknown multiple-choice format '${format}'; valid: ${MC_FORMATS.join(', ')}`);
  }
  const records = readJsonl(file, 'multiple-choice file');
  const chosen = format ?? detectFormat(records[0]!.value);
  if (chosen === null) {
    const first = records[0]!;
    throw new EvaluationError(
      `${file}:${first.line}: unknown multiple-choice format (fields ${Object.keys(first.value).join(', ') || 'none'}); expected ${SHAPES}`,
    );
  }
  for (const record of records) {
    const seen = detectFormat(record.value);
    if (seen !== chosen) {
      throw new EvaluationError(
        `${file}:${record.line}: expected a ${chosen} item like line ${records[0]!.line}, got ${seen ?? `fields ${Object.keys(record.value).join(', ')}`}; expected ${SHAPES}`,
      );
    }
  }
  return { format: chosen, items: records.map((r) => parseItem(r, file, chosen)) };
}

/** MMLU's task description, as in lm-evaluation-harness. */
function header(item: McItem): string {
  if (item.format !== 'mmlu') return '';
  const about = item.subject ? ` about ${item.subject.replace(/_/g, ' ')}` : '';
  return `The following are multiple choice questions (with answers)${about}.\n\n`;
}

/** The few-shot shots of one item: k distinct items of the pool, drawn from the item's own stream. */
export function sampleShots(pool: McItem[], k: number, generator: Generator): McItem[] {
  if (k > pool.length)
    throw new EvaluationError(
      `${k}-shot prompts need at least ${k} items in the shot pool, it has ${pool.length}`,
    );
  if (k === 0) return [];
  return Array.from(generator.permutation(pool.length).subarray(0, k), (i) => pool[i]!);
}

/** The prompt before a choice: header, shots with their gold answers, blank lines between, then the query. */
export function buildPrompt(item: McItem, shots: McItem[]): string {
  const solved = shots.map((s) => `${s.query}${s.choices[s.gold]}`);
  return header(item) + [...solved, item.query].join('\n\n');
}
