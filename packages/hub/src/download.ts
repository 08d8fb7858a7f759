// One file into the cache's blobs/: written to blobs/<etag>.incomplete, resumed from its length
// with an HTTP Range request after an interruption, checked (size; sha256 when the etag is an LFS
// sha256; a safetensors header against the file length) and only then renamed to blobs/<etag>.
// So a complete-looking path never holds a partial file. Written here rather than through
// @huggingface/hub's downloadFileToCacheDir, which restarts every download from byte 0 (no
// Range), keeps no progress, verifies nothing and names the snapshot after the file's last
// commit instead of the revision's. Test: cd packages/hub && npx vitest run test/download
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { HubError } from './errors.js';
import { causeOf, type FileInfo, getFile } from './http.js';
import { formatBytes, type ProgressSink } from './progress.js';
import { checkSafetensorsComplete } from './safetensors-check.js';

const SHA256 = /^[0-9a-f]{64}$/;

async function hashPrefix(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

export interface BlobDownload {
  url: string;
  /** The file's path in the repository, for messages and the progress bar. */
  file: string;
  blob: string;
  info: FileInfo;
  token: string | null;
  progress: ProgressSink;
}

export async function downloadBlob({ url, file, blob, info, token, progress }: BlobDownload): Promise<void> {
  const incomplete = `${blob}.incomplete`;
  mkdirSync(dirname(blob), { recursive: true });
  let have = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (have > info.size) have = 0;
  // A part as long as the file (a crash between the last write and the rename) needs no request.
  const response = have < info.size ? await getFile(url, file, token, have) : null;
  const range = /^bytes (\d+)-/.exec(response?.headers.get('content-range') ?? '');
  if (response && (response.status !== 206 || !range || Number(range[1]) !== have)) have = 0; // whole file sent
  const verify = SHA256.test(info.etag) ? createHash('sha256') : null;
  const fd = openSync(incomplete, have > 0 ? 'r+' : 'w');
  let written = have;
  progress.start(file, info.size, have);
  try {
    ftruncateSync(fd, have);
    if (verify && have > 0) await hashPrefix(incomplete, verify);
    if (response?.body) {
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          let offset = 0;
          while (offset < chunk.length)
            offset += writeSync(fd, chunk, offset, chunk.length - offset, written + offset);
          written += chunk.length;
          verify?.update(chunk);
          progress.advance(chunk.length);
        }
      } catch (error) {
        throw new HubError(
          `${file}: download interrupted after ${formatBytes(written)} of ${formatBytes(info.size)} (${causeOf(error)}); ` +
            `the part is kept in ${incomplete} and the next run resumes from there`,
        );
      }
    }
    fsyncSync(fd);
  } catch (error) {
    progress.end(false);
    throw error;
  } finally {
    closeSync(fd);
  }
  if (written !== info.size) {
    progress.end(false);
    throw new HubError(
      `${file}: received ${written} bytes but the Hub announced ${info.size}; refusing the truncated file ` +
        `(kept in ${incomplete}; the next run resumes or restarts it)`,
    );
  }
  const digest = verify?.digest('hex');
  if (digest && digest !== info.etag) {
    progress.end(false);
    throw new HubError(
      `${file}: sha256 of the ${formatBytes(written)} received is ${digest}, but the Hub says ${info.etag}; the corrupt download was kept in ${incomplete}, delete it and run again`,
    );
  }
  if (file.endsWith('.safetensors')) {
    try {
      checkSafetensorsComplete(incomplete, file);
    } catch (error) {
      progress.end(false);
      throw error;
    }
  }
  renameSync(incomplete, blob);
  progress.end(true);
}
