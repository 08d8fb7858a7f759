// Where the payload of one data-plane frame lands as the socket reads it (reader.ts asks for a
// window, the kernel fills it, the landing advances): straight into the receiver's array for a
// copy; through a small reused buffer folded into the array after every read for a sum or max (the
// bytes are still in cache; folder.ts does the folding); into a buffer of its own while no receive
// is posted, until one is. Test: cd packages/parallel && npx vitest run src/reader.test.ts

import { type Combine, combineInto } from './combine.js';
import type { Folder } from './folder.js';
import type { Elements, Receive } from './transport.js';

export interface Landing {
  /** Where the next payload bytes go: a view of 1 to max bytes. */
  window(max: number): Uint8Array;
  /** The first n bytes of the last window now hold payload. */
  advance(n: number): void;
  /** Every payload byte has landed. */
  end(): void;
}

/** The frame carries no payload (accept, refuse, goodbye; or an empty message). */
export class NoPayload implements Landing {
  constructor(private readonly done: () => void = () => {}) {}
  window(): Uint8Array {
    throw new Error('wire: payload bytes on a frame that has none');
  }
  advance(): void {}
  end(): void {
    this.done();
  }
}

/** The kernel writes into bytes[offset, offset + length) directly: no copy at all. */
export class InPlace implements Landing {
  private at: number;
  private readonly stop: number;
  constructor(
    private readonly bytes: Uint8Array,
    offset: number,
    length: number,
    private readonly done: () => void,
  ) {
    this.at = offset;
    this.stop = offset + length;
  }
  window(max: number): Uint8Array {
    return this.bytes.subarray(this.at, Math.min(this.stop, this.at + max));
  }
  advance(n: number): void {
    this.at += n;
  }
  end(): void {
    this.done();
  }
}

/**
 * Reads into the folder's scratch (reused by every frame of the connection) and combines the whole
 * elements of each read into target at once, so a partial element waits for the next read.
 */
export class Folding implements Landing {
  private base: number;
  private filled = 0;
  private folded = 0;
  constructor(
    private readonly target: Elements,
    private readonly combine: Combine,
    offset: number,
    private readonly folder: Folder,
    private readonly done: () => void,
  ) {
    this.base = offset;
  }
  window(max: number): Uint8Array {
    const { scratch } = this.folder;
    if (this.filled === scratch.length) {
      // Full scratch ends on an element boundary (its size is a multiple of 8): all of it is folded.
      this.base += this.filled;
      this.filled = this.folded = 0;
    }
    return scratch.subarray(this.filled, Math.min(scratch.length, this.filled + max));
  }
  advance(n: number): void {
    this.filled += n;
    const whole = this.filled - (this.filled % this.target.BYTES_PER_ELEMENT);
    if (whole <= this.folded) return;
    this.folder.fold(this.target, this.combine, this.base + this.folded, this.folded, whole);
    this.folded = whole;
  }
  end(): void {
    this.done();
  }
}

/** Puts bytes where landing says, window by window, as if the socket had read them. */
export function feed(landing: Landing, bytes: Uint8Array): void {
  for (let moved = 0; moved < bytes.byteLength; ) {
    const window = landing.window(bytes.byteLength - moved);
    window.set(bytes.subarray(moved, moved + window.length));
    landing.advance(window.length);
    moved += window.length;
  }
}

/** What a chunk that came before its receive needs from the mailbox. */
export interface Unclaimed {
  /** The chunk's receive if one is posted now (and the chunk fits it), else null. */
  claim(): Receive | null;
  /** Where the chunk's bytes from `from` on land once claimed. */
  land(receive: Receive, from: number): Landing;
  /** The first `bytes` of the chunk were combined into the claimed receive here. */
  landed(bytes: number): void;
  /** The chunk ended unclaimed: all of it, to wait in the mailbox. */
  queue(data: Uint8Array): void;
}

/**
 * No receive is posted yet: the bytes wait in their own buffer, and before every read the mailbox
 * is asked again. Once the receive is posted (its rank was a moment behind, which is common when
 * ranks outnumber cores), the whole elements that waited are combined into it at once and the rest
 * of the chunk, a partial element first, lands straight in place.
 */
export class Staged implements Landing {
  private readonly data: Uint8Array;
  private at = 0;
  private claimed: Landing | null = null;
  constructor(
    length: number,
    /** Where the chunk starts in its message, in bytes. */
    private readonly offset: number,
    private readonly mailbox: Unclaimed,
  ) {
    this.data = new Uint8Array(length);
  }
  window(max: number): Uint8Array {
    if (!this.claimed) this.claimed = this.tryClaim();
    return this.claimed ? this.claimed.window(max) : this.data.subarray(this.at, this.at + max);
  }
  advance(n: number): void {
    if (this.claimed) this.claimed.advance(n);
    else this.at += n;
  }
  end(): void {
    if (this.claimed) this.claimed.end();
    else this.mailbox.queue(this.data);
  }
  private tryClaim(): Landing | null {
    const receive = this.mailbox.claim();
    if (!receive) return null;
    const whole = this.at - (this.at % receive.target.BYTES_PER_ELEMENT);
    if (whole > 0) {
      combineInto(receive.target, receive.combine, this.offset, this.data.subarray(0, whole));
      this.mailbox.landed(whole);
    }
    const rest = this.mailbox.land(receive, whole);
    feed(rest, this.data.subarray(whole, this.at));
    return rest;
  }
}
