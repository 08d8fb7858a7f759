// A safetensors file is complete when its length is 8 + header length + the end of the last
// tensor's data_offsets: checked on every shard we download or reuse, so a truncated shard (a
// cut copy, a partial file from another tool) is refused with its name, not misread later.
// Test: cd packages/hub && npx vitest run src/safetensors-check
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { HubError } from './errors.js';

export function checkSafetensorsComplete(path: string, file = path): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const prefix = Buffer.alloc(8);
    if (size < 8 || readSync(fd, prefix, 0, 8, 0) !== 8)
      throw new HubError(
        `${file}: truncated safetensors file (${size} bytes, shorter than its 8-byte header length)`,
      );
    const headerLength = Number(prefix.readBigUInt64LE(0));
    if (8 + headerLength > size)
      throw new HubError(
        `${file}: truncated safetensors file: the header alone needs ${8 + headerLength} bytes but the file has ${size}`,
      );
    const header = Buffer.alloc(headerLength);
    readSync(fd, header, 0, headerLength, 8);
    let entries: Record<string, { data_offsets?: [number, number] }>;
    try {
      entries = JSON.parse(header.toString('utf8'));
    } catch {
      throw new HubError(`${file}: not a safetensors file (its header is not JSON)`);
    }
    let end = 0;
    for (const [name, entry] of Object.entries(entries)) {
      if (name !== '__metadata__' && entry.data_offsets) end = Math.max(end, entry.data_offsets[1]);
    }
    const expected = 8 + headerLength + end;
    if (size < expected)
      throw new HubError(
        `${file}: truncated safetensors file: its tensors need ${expected} bytes but the file has ${size}; delete it and download again`,
      );
  } finally {
    closeSync(fd);
  }
}
