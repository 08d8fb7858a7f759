// Incremental detokenization for generation: push one id at a time, get back only the newly
// completed text. Byte-fallback pieces (<0xF0><0x9F>...) are held until their UTF-8 character is
// whole, and the '▁' space marker stays correct because a window of ids is re-decoded as a whole.
// Test: cd packages/model-grin && npx vitest run src/tokenizer/stream-decoder.test.ts

import type { DecodeOptions, Tokenizer } from './types.js';

export interface StreamDecoder {
  /** Adds one generated id; returns the text it completes ('' while a character is partial). */
  push(id: number): string;
  /** Ends the stream: returns whatever is still held (a broken byte sequence shows as U+FFFD). */
  flush(): string;
}

export interface StreamDecoderOptions extends DecodeOptions {
  /** Ids re-decoded per push stay below this; older ones are dropped at a safe point. */
  windowSize?: number;
}

const REPLACEMENT_CHARACTER = '\uFFFD';
// A UTF-8 character is at most 4 bytes, so more than 4 pending byte pieces cannot complete it.
const MAX_HELD_IDS = 4;

export function createStreamDecoder(tokenizer: Tokenizer, options: StreamDecoderOptions = {}): StreamDecoder {
  const decodeOptions: DecodeOptions = { skipSpecial: options.skipSpecial ?? true };
  const windowSize = Math.max(8, options.windowSize ?? 64);
  // After a trim the window starts with one id whose text was already emitted, so the next
  // piece's leading '▁' decodes as a space instead of being stripped as the start of a text.
  // (The very first piece's leading space is stripped, as decode() does.)
  let window: number[] = [];
  let emittedChars = 0;
  let heldIds = 0;

  const emit = (force: boolean): string => {
    const text = tokenizer.decode(window, decodeOptions);
    if (!force && text.endsWith(REPLACEMENT_CHARACTER) && heldIds < MAX_HELD_IDS) return '';
    const fresh = text.slice(emittedChars);
    emittedChars = text.length;
    heldIds = 0;
    if (window.length >= windowSize) {
      // Keep the last id as context; what it decodes to has been emitted already.
      window = window.slice(-1);
      emittedChars = tokenizer.decode(window, decodeOptions).length;
    }
    return fresh;
  };

  return {
    push(id: number): string {
      window.push(id);
      heldIds++;
      return emit(false);
    },
    flush(): string {
      if (heldIds === 0) return '';
      return emit(true);
    },
  };
}
