/** sha256 digests as branded `sha256:<hex>` strings: diffIDs, blob digests, file hashes. */

import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

declare const sha256Brand: unique symbol;

/**
 * An OCI content digest, `sha256:` plus 64 lowercase hex digits. Branded so it cannot
 * be confused with an SRI integrity string (`sha512-...`) from lib/sources.
 * A layer's diffID is the digest of its uncompressed tar; its blob digest is the
 * digest of the bytes stored (compressed or not).
 */
export type Sha256Digest = `sha256:${string}` & { readonly [sha256Brand]: true };

/** Checks and brands a `sha256:<hex>` string; throws a TypeError on anything else. */
export function toSha256Digest(text: string): Sha256Digest {
  if (!/^sha256:[0-9a-f]{64}$/.test(text)) throw new TypeError(`not a sha256 digest: ${text}`);
  return text as Sha256Digest;
}

/** The 64 hex digits of a digest (the file name under `blobs/sha256/`). */
export function digestHex(digest: Sha256Digest): string {
  return digest.slice('sha256:'.length);
}

/** Brands the final value of a sha256 Hash object. */
export function finishDigest(hash: Hash): Sha256Digest {
  return `sha256:${hash.digest('hex')}` as Sha256Digest;
}

/** Digest of bytes in memory. */
export function digestBytes(bytes: Buffer | string): Sha256Digest {
  return finishDigest(createHash('sha256').update(bytes));
}

/**
 * Digest and size of a file (or of `sizeBytes` bytes from `offsetBytes`), read in
 * 1 MiB chunks; never holds the file in memory.
 */
export function digestFile(
  path: string | Buffer,
  range: { offsetBytes?: number; sizeBytes?: number } = {},
): { digest: Sha256Digest; sizeBytes: number } {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    let position = range.offsetBytes ?? 0;
    let remaining = range.sizeBytes ?? Infinity;
    let total = 0;
    while (remaining > 0) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, remaining), position);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      position += n;
      remaining -= n;
      total += n;
    }
    return { digest: finishDigest(hash), sizeBytes: total };
  } finally {
    closeSync(fd);
  }
}
