/** A cache poisoner for the trust tests: rewrites the bytes of a download-cache entry in place, as an attacker or a bad disk would. */

import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Path of the content file cacache keeps for `integrity` (an SRI string such as
 * `sha256-…`) under `cacheDir`: content-v2/ALGORITHM/HEX[0,2]/HEX[2,4]/HEX[4,].
 */
export function contentPathOf(cacheDir: string, integrity: string): string {
  const dash = integrity.indexOf('-');
  const hex = Buffer.from(integrity.slice(dash + 1), 'base64').toString('hex');
  return join(cacheDir, 'content-v2', integrity.slice(0, dash), hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
}

/** The SRI string of a `sha256:HEX` digest, as the cache keys base-image blobs. */
export function integrityOfDigest(digest: string): string {
  return `sha256-${Buffer.from(digest.slice('sha256:'.length), 'hex').toString('base64')}`;
}

/**
 * Replaces the bytes cached under `integrity` by `replace(old)` (default: the old bytes
 * with one bit flipped in the middle). Throws when the cache has no such file. Returns
 * the content file's path.
 */
export function poisonCacheEntry(cacheDir: string, integrity: string, replace?: (old: Buffer) => Buffer): string {
  const path = contentPathOf(cacheDir, integrity);
  if (!existsSync(path)) throw new Error(`cache poisoner: no content file for ${integrity} at ${path}`);
  const old = readFileSync(path);
  const bytes = replace !== undefined ? replace(old) : flipOneBit(old);
  chmodSync(path, 0o644);
  writeFileSync(path, bytes);
  return path;
}

function flipOneBit(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = Math.floor(copy.length / 2);
  copy[at] = copy[at]! ^ 1;
  return copy;
}
