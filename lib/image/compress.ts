/** gzip with a pinned level and pinned header bytes, so compressed layers are reproducible. */

import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { createGzip, constants } from 'node:zlib';
import { finishDigest, type Sha256Digest } from './digest.js';

/** The compression level every gzip layer uses. */
export const GZIP_LEVEL = 6;
/** OS byte of the gzip header: 255, "unknown" (RFC 1952), what Go's compress/gzip writes. */
export const GZIP_OS_BYTE = 0xff;

/**
 * Pins the 10-byte gzip header (RFC 1952 section 2.3):
 *
 *     1f 8b | 08 (deflate) | 00 (no flags: no name, no comment) | 00 00 00 00 (mtime 0)
 *     | 00 (XFL) | ff (OS unknown)
 *
 * Node's zlib writes the build platform's OS byte (03 on Linux, 0a on Windows...);
 * everything else it writes is already fixed, so only XFL and OS are overwritten.
 */
export function pinGzipHeader(header: Buffer): void {
  header[4] = 0;
  header[5] = 0;
  header[6] = 0;
  header[7] = 0;
  header[8] = 0;
  header[9] = GZIP_OS_BYTE;
}

/** What gzipFile produced: the blob digest of the compressed bytes and their size. */
export interface GzipResult {
  digest: Sha256Digest;
  sizeBytes: number;
}

/**
 * Compresses file `input` to file `output` (created or truncated) with level 6,
 * default memLevel/strategy and the pinned header; streams, hashing the compressed
 * bytes as they are written. The output depends only on the input bytes and the
 * zlib bundled with Node (pinned by the Node major version).
 */
export async function gzipFile(input: string, output: string): Promise<GzipResult> {
  const gzip = createGzip({ level: GZIP_LEVEL, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY, chunkSize: 1 << 20 });
  createReadStream(input, { highWaterMark: 1 << 20 }).on('error', (error) => gzip.destroy(error)).pipe(gzip);
  const hash = createHash('sha256');
  const fd = openSync(output, 'w', 0o644);
  let sizeBytes = 0;
  try {
    let isFirst = true;
    for await (const piece of gzip) {
      const chunk = piece as Buffer;
      if (isFirst) {
        // zlib emits the whole 10-byte header in its first chunk.
        pinGzipHeader(chunk);
        isFirst = false;
      }
      hash.update(chunk);
      let at = 0;
      while (at < chunk.length) at += writeSync(fd, chunk, at, chunk.length - at);
      sizeBytes += chunk.length;
    }
  } finally {
    closeSync(fd);
  }
  return { digest: finishDigest(hash), sizeBytes };
}
