/** File stamps (size, mtime, ctime, inode, sha256) and the "did it change?" test. */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

/** What redo-ts remembers about one file: cheap stat fields plus the content hash. */
export interface FileStamp {
  sizeBytes: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256Hex: string;
}

/**
 * A dependency's identity as compared across builds: `sha256:<hex>` of a file's
 * content, `missing` for an absent file, `dir` for a directory, or for a target
 * without output `none:<build count>` / `stamp:<hex>` (set with redo-stamp).
 */
export type Identity = string;

/** The identity of a missing file. */
export const MISSING: Identity = 'missing';

/** sha256 of `data` as lowercase hex. Pure. */
export function sha256Hex(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Bytes hashFile reads at a time: memory stays flat whatever the file's size. */
const HASH_CHUNK_BYTES = 1 << 20;
let hashChunk: Buffer | undefined;

/**
 * sha256 of the file at `absolutePath` as lowercase hex, read in 1 MiB chunks (never
 * whole: files of 2 GiB and more are hashed like any other). Throws the fs error if
 * unreadable.
 */
export function hashFile(absolutePath: string): string {
  const hash = crypto.createHash('sha256');
  hashChunk ??= Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const fd = fs.openSync(absolutePath, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, hashChunk, 0, HASH_CHUNK_BYTES, null);
      if (n === 0) break;
      hash.update(hashChunk.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** True when the stat fields of `stats` equal those of `stamp` (so the content is assumed equal). */
export function isSameStat(stamp: Omit<FileStamp, 'sha256Hex'>, stats: fs.Stats): boolean {
  return stamp.sizeBytes === stats.size && stamp.mtimeMs === stats.mtimeMs && stamp.ctimeMs === stats.ctimeMs && stamp.ino === stats.ino;
}

/**
 * Stamps the file at `absolutePath`, reusing `previous.sha256Hex` without reading the
 * content when the stat fields are unchanged. Returns undefined for a missing file
 * and a stamp with sha256Hex 'dir' for a directory. Follows symlinks.
 */
export function readStamp(absolutePath: string, previous?: FileStamp): FileStamp | undefined {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(absolutePath);
  } catch {
    return undefined;
  }
  const base = { sizeBytes: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino };
  if (stats.isDirectory()) return { ...base, sizeBytes: 0, mtimeMs: 0, ctimeMs: 0, sha256Hex: 'dir' };
  if (previous !== undefined && isSameStat(previous, stats)) return { ...base, sha256Hex: previous.sha256Hex };
  return { ...base, sha256Hex: hashFile(absolutePath) };
}

/** The identity of a stamped file (or of a missing one). Pure. */
export function identityOf(stamp: FileStamp | undefined): Identity {
  if (stamp === undefined) return MISSING;
  return stamp.sha256Hex === 'dir' ? 'dir' : `sha256:${stamp.sha256Hex}`;
}
