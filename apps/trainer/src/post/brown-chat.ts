// The embedded post-training data: a small chat set about the Brown corpus, generated from the corpus
// itself, and a preference set built from it. Three kinds of turns: which genre a sentence comes
// from, the code letter of a genre, and the end of a sentence. The preference set pairs each answer
// (chosen) with a wrong one (rejected): another genre, another letter, or the sentence's beginning
// repeated instead of its end. Both are committed as apps/trainer/data/brown-{chat,preferences}.jsonl, and the
// test checks the files equal what this code generates.
// Regenerate: cd apps/trainer && npx vitest run src/post/brown-chat (prints the command on mismatch)
import { Generator } from '@grin-moe/tensor';
import { BROWN_GENRES, type BrownText, loadBrown } from '../data/brown.js';

export interface BrownChat {
  messages: { role: 'user' | 'assistant'; content: string }[];
}
export interface BrownPreference {
  prompt: string;
  chosen: string;
  rejected: string;
}

const SEED = 2409;
const GENRE_QUESTIONS = 240;
const CONTINUATIONS = 120;
const CODE_REPEATS = 4;

/** Sentences of 8 to 16 words with plain words only, per text, in corpus order. */
function sentencesOf(text: BrownText): string[] {
  return text.text
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => {
      const words = s.split(' ');
      return words.length >= 8 && words.length <= 16 && /^[A-Za-z][A-Za-z ,';-]*[.!?]$/.test(s);
    });
}

interface Item {
  chat: BrownChat;
  preference: BrownPreference;
}

function turn(question: string, answer: string, wrong: string): Item {
  return {
    chat: {
      messages: [
        { role: 'user', content: question },
        { role: 'assistant', content: answer },
      ],
    },
    preference: { prompt: question, chosen: answer, rejected: wrong },
  };
}

/** The set, in a fixed shuffled order: same corpus, same records. */
export function brownChatSet(): Item[] {
  const generator = new Generator(SEED);
  const texts = loadBrown().texts;
  const genres = Object.entries(BROWN_GENRES) as [string, string][];
  const pick = <T>(items: readonly T[], avoid?: T): T => {
    for (;;) {
      const item = items[generator.randint(1, 0, items.length)[0]!]!;
      if (item !== avoid) return item;
    }
  };
  const items: Item[] = [];
  const pool = texts.flatMap((text) => sentencesOf(text).map((sentence) => ({ text, sentence })));
  const order = generator.permutation(pool.length);
  for (let i = 0; i < GENRE_QUESTIONS; i++) {
    const { text, sentence } = pool[order[i]!]!;
    const wrong = pick(
      genres.map(([, name]) => name),
      text.genreName,
    );
    items.push(
      turn(
        `Which genre of the Brown corpus is this sentence from? "${sentence}"`,
        `It is from the ${text.genreName} genre.`,
        `It is from the ${wrong} genre.`,
      ),
    );
  }
  for (let i = 0; i < CONTINUATIONS; i++) {
    const { sentence } = pool[order[GENRE_QUESTIONS + i]!]!;
    const words = sentence.split(' ');
    const half = Math.floor(words.length / 2);
    // rejected: the prompt parroted back instead of finished, a failure that generalises
    items.push(
      turn(
        `Finish this sentence: "${words.slice(0, half).join(' ')}"`,
        words.slice(half).join(' '),
        words.slice(0, half).join(' '),
      ),
    );
  }
  for (let r = 0; r < CODE_REPEATS; r++)
    for (const [letter, name] of genres) {
      const wrong = pick(
        genres.map(([l]) => l),
        letter,
      );
      items.push(
        turn(
          `What is the code letter of the ${name} genre in the Brown corpus?`,
          `The ${name} genre has the letter ${letter}.`,
          `The ${name} genre has the letter ${wrong}.`,
        ),
      );
    }
  const shuffled = generator.permutation(items.length);
  return Array.from(shuffled, (i) => items[i]!);
}

export function brownChatJsonl(items: Item[]): { chat: string; preferences: string } {
  return {
    chat: items.map((item) => `${JSON.stringify(item.chat)}\n`).join(''),
    preferences: items.map((item) => `${JSON.stringify(item.preference)}\n`).join(''),
  };
}
