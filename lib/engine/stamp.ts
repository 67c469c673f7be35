/** File stamps (size, mtime, ctime, inode, sha256) and the "did it change?" test. */

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { visitFolderTree } from './folder-tree.js';

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
 * content, `missing` for an absent file, `listing:<hex>` for a folder (hashFolderListing:
 * its names, not its files' content; records older than it say `dir`), or for a target
 * `dir:<hex>` of a folder output's whole tree, and without output `none:<build count>` /
 * `stamp:<hex>` (set with redo-stamp).
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
 * whole: files of 2 GiB and more are hashed like any other). With `regularSizeBytes`
 * (the size a stat just gave for a regular file), a short read that reaches that size
 * ends the file without a last read of 0 bytes: a regular file reads short only at its
 * end. Throws the fs error if unreadable.
 */
export function hashFile(absolutePath: string, regularSizeBytes?: number): string {
  const hash = crypto.createHash('sha256');
  hashChunk ??= Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  const fd = fs.openSync(absolutePath, 'r');
  try {
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, hashChunk, 0, HASH_CHUNK_BYTES, null);
      if (n === 0) break;
      hash.update(hashChunk.subarray(0, n));
      total += n;
      if (regularSizeBytes !== undefined && n < HASH_CHUNK_BYTES && total >= regularSizeBytes) break;
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
 * content when the stat fields are unchanged. Returns undefined for a missing file.
 * A folder's stamp has no stat fields (a folder's own stat says nothing of what is
 * below it) and `listing:<hex>` (hashFolderListing) for its hash, computed every time:
 * a file added, removed or renamed anywhere below changes it. Follows symlinks.
 */
export function readStamp(absolutePath: string, previous?: FileStamp): FileStamp | undefined {
  let stats: fs.Stats | undefined;
  try {
    stats = fs.statSync(absolutePath, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
  if (stats === undefined) return undefined;
  const base = { sizeBytes: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino };
  if (stats.isDirectory()) return { ...base, sizeBytes: 0, mtimeMs: 0, ctimeMs: 0, sha256Hex: `listing:${hashFolderListing(absolutePath)}` };
  if (previous !== undefined && isSameStat(previous, stats)) return { ...base, sha256Hex: previous.sha256Hex };
  return { ...base, sha256Hex: hashFile(absolutePath, stats.isFile() ? stats.size : undefined) };
}

/** The identity of a stamped file (or of a missing one). Pure. */
export function identityOf(stamp: FileStamp | undefined): Identity {
  if (stamp === undefined) return MISSING;
  return isFolderStamp(stamp) ? stamp.sha256Hex : `sha256:${stamp.sha256Hex}`;
}

/** True when `stamp` is a folder's (`listing:<hex>`, or `dir` as records before listings said). Pure. */
export function isFolderStamp(stamp: FileStamp): boolean {
  return stamp.sha256Hex === 'dir' || stamp.sha256Hex.startsWith('listing:');
}

/**
 * A folder's listing as a hex sha256: every member below it (folder-tree.ts order:
 * depth-first, names sorted, symlinks not followed) by its path and kind, with a file's
 * executable bit and a symlink's target. The same names anywhere give the same hash (no
 * inode, time or owner); no file's content is read, so it costs one lstat per member.
 * This is what a dependency on a folder compares: files coming, going or being renamed
 * below it, a chmod +x, a link pointed elsewhere. Their content is what dependencies on
 * the files themselves compare.
 */
export function hashFolderListing(absolutePath: string): string {
  const hash = crypto.createHash('sha256');
  try {
    visitFolderTree(absolutePath, (relative, absolute, stats) => {
      if (stats === undefined) hash.update(`u ${relative}\0`);
      else if (stats.isDirectory()) hash.update(`d ${relative}\0`);
      else if (stats.isSymbolicLink()) hash.update(`l ${relative}\0${readLink(absolute)}\0`);
      else if (stats.isFile()) hash.update(`f ${relative} ${(stats.mode & 0o111) !== 0 ? 'x' : '-'}\0`);
      else hash.update(`o ${relative}\0`);
    });
  } catch {
    // The folder itself cannot be listed: its hash says so, and changes when it can be.
    hash.update('unreadable\0');
  }
  return hash.digest('hex');
}

function readLink(absolute: string): string {
  try {
    return fs.readlinkSync(absolute);
  } catch {
    return '';
  }
}
