// The reading end of a data-plane connection, as the buffers the socket reads into next (Node's
// net.connect onread: the kernel copies into memory we choose, with no allocation per read).
// Between frames it reads into a small header buffer, so one read takes many small messages; a
// frame's payload then goes straight to where its Landing says, and only the first bytes that
// came in with the header are copied over.
// Test: cd packages/parallel && npx vitest run src/reader.test.ts
import { feed, type Landing } from './landing.js';
import { decodeHeader, type FrameHeader, MAX_HEADER_BYTES } from './wire.js';

export class FrameReader {
  private readonly buffer: Uint8Array;
  private filled = 0;
  private landing: Landing | null = null;
  private remaining = 0;
  /** Whether the last next() handed out a window of the landing rather than the header buffer. */
  private direct = false;

  constructor(
    /** Decides where a frame's payload goes; called once per frame, in stream order. */
    private readonly route: (header: FrameHeader) => Landing,
    bufferBytes = 64 * 1024,
  ) {
    this.buffer = new Uint8Array(Math.max(bufferBytes, MAX_HEADER_BYTES));
  }

  /** Where the socket should read next. */
  next(): Uint8Array {
    // Mid-payload the header buffer is empty (read() moved every byte it held onward).
    this.direct = this.landing !== null;
    return this.landing ? this.landing.window(this.remaining) : this.buffer.subarray(this.filled);
  }

  /** The socket read n bytes into the view the last next() returned. */
  read(n: number): void {
    if (this.direct) {
      this.landing!.advance(n);
      this.remaining -= n;
      if (this.remaining === 0) this.endFrame();
      return;
    }
    this.filled += n;
    let at = 0;
    for (;;) {
      if (this.landing) {
        const take = Math.min(this.remaining, this.filled - at);
        if (take === 0) break;
        feed(this.landing, this.buffer.subarray(at, at + take));
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.endFrame();
        continue;
      }
      const decoded = decodeHeader(this.buffer, at, this.filled);
      if (!decoded) break;
      at += decoded.size;
      this.landing = this.route(decoded.header);
      this.remaining = decoded.header.length;
      if (this.remaining === 0) this.endFrame();
    }
    this.buffer.copyWithin(0, at, this.filled);
    this.filled -= at;
  }

  private endFrame(): void {
    const landing = this.landing!;
    this.landing = null;
    landing.end();
  }
}
