/**
 * The tar entry type, member-path rules and the POSIX ustar/pax header decoder that
 * indexing and archive comparison use (writing goes through tar-stream in tar.ts).
 */

import type { Readable } from 'node:stream';
import { RedoError } from '../errors.js';

/** Kinds of tar members we write and read. Hardlinks point at an earlier member's path. */
export type TarEntryType =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'hardlink'
  | 'fifo'
  | 'character-device'
  | 'block-device';

/**
 * Where a file entry's bytes come from. Never a whole large file in memory:
 * `path` reads `sizeBytes` bytes of a file on disk starting at `offsetBytes` (0 by
 * default; a member inside an uncompressed tar uses its data offset), `buffer` is for
 * small generated files, `stream` opens a fresh reader each time it is called.
 */
export type TarContent =
  | { kind: 'path'; path: string | Buffer; offsetBytes?: number }
  | { kind: 'buffer'; bytes: Buffer }
  | { kind: 'stream'; open: () => Readable };

/**
 * One normalised archive member. `path` holds the raw name bytes (reading keeps
 * names that are not UTF-8; writeTar refuses them, see tar.ts): relative, POSIX, no leading `./` or `/`, no trailing `/`, no
 * `.` or `..` component. `mode` is permission bits only (0o7777). `linkTarget` is the
 * raw target of a symlink or the member path a hardlink points at.
 */
export interface TarEntry {
  path: Buffer;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  linkTarget?: Buffer;
  content?: TarContent;
  deviceMajor?: number;
  deviceMinor?: number;
}

/** A header as stored, all fields, for readers and byte-level comparison. */
export interface TarHeaderFields {
  path: Buffer;
  type: TarEntryType | 'other';
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  mtimeSeconds: number;
  linkTarget: Buffer;
  uname: string;
  gname: string;
  deviceMajor: number;
  deviceMinor: number;
  /** Pax records that applied to this member, raw values, keyed by name. */
  pax: Record<string, Buffer>;
}

/** The tar block size; headers and content are padded to it. */
export const BLOCK_BYTES = 512;

/**
 * Turns a user path (string or raw bytes) into a normalised member path: strips
 * leading `/` and `./`, collapses repeated and trailing slashes, refuses `..` and
 * empty results. Throws ERR_LAYER_PATH naming the path.
 */
export function toMemberPath(input: string | Buffer): Buffer {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x2f) {
      const part = bytes.subarray(start, i);
      start = i + 1;
      if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
        throw new RedoError('ERR_LAYER_PATH', `redo: "${bytes.toString('utf8')}": path escapes the rootfs with ".."`, {
          hint: 'member paths are relative to the rootfs and may not contain ".."',
        });
      }
      if (part.includes(0)) {
        throw new RedoError('ERR_LAYER_PATH', `redo: "${bytes.toString('utf8')}": path contains a NUL byte`);
      }
      parts.push(part);
    }
  }
  if (parts.length === 0) {
    throw new RedoError('ERR_LAYER_PATH', `redo: "${bytes.toString('utf8')}": empty member path`);
  }
  const joined: Buffer[] = [];
  for (const p of parts) {
    if (joined.length > 0) joined.push(SLASH);
    joined.push(p);
  }
  return Buffer.concat(joined);
}

const SLASH = Buffer.from('/');

/** Byte order of member paths: the one sort order of every archive we write. */
export function comparePaths(a: Buffer, b: Buffer): number {
  return Buffer.compare(a, b);
}

/** The path of an entry as text for messages (invalid UTF-8 shown as U+FFFD). */
export function pathText(path: Buffer): string {
  return path.toString('utf8');
}

/** Zero bytes needed after `sizeBytes` of content to reach the next block boundary. */
export function paddingBytes(sizeBytes: number): number {
  const rest = sizeBytes % BLOCK_BYTES;
  return rest === 0 ? 0 : BLOCK_BYTES - rest;
}

function readOctal(block: Buffer, offset: number, width: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    // GNU base-256: big-endian binary after the marker bit.
    let value = 0;
    for (let i = offset + 1; i < offset + width; i++) value = value * 256 + block[i]!;
    return value;
  }
  const text = block.toString('latin1', offset, offset + width).replace(/[\0 ]+$/g, '').replace(/^[ \0]+/, '');
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(block: Buffer, offset: number, width: number): Buffer {
  const end = block.indexOf(0, offset);
  return Buffer.from(block.subarray(offset, end === -1 || end > offset + width ? offset + width : end));
}

const typesByFlag: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

/** True when the block is all zeros (end-of-archive marker). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Decodes one 512-byte header block (ustar, GNU or v7) without applying pax or GNU
 * long-name records; `where` names the archive in errors. Throws ERR_TAR_MALFORMED
 * on a bad checksum.
 */
export function decodeHeader(block: Buffer, where: string): TarHeaderFields {
  let sum = 0;
  for (let i = 0; i < BLOCK_BYTES; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  const stored = readOctal(block, 148, 8);
  if (sum !== stored) {
    throw new RedoError('ERR_TAR_MALFORMED', `redo: "${where}": not a tar archive or corrupt header`, {
      details: [`header checksum: wanted ${stored.toString(8)}, found ${sum.toString(8)}`],
      hint: 'compressed archives must be decompressed first',
    });
  }
  const typeflag = String.fromCharCode(block[156]!);
  let path = cString(block, 0, 100);
  const isUstar = block.toString('latin1', 257, 262) === 'ustar';
  const isGnu = block.toString('latin1', 257, 265) === 'ustar  \0';
  if (isUstar && !isGnu && block[345] !== 0) path = Buffer.concat([cString(block, 345, 155), SLASH, path]);
  let type: TarEntryType | 'other' = typesByFlag[typeflag] ?? 'other';
  if (type === 'file' && path.length > 0 && path[path.length - 1] === 0x2f) type = 'directory';
  return {
    path,
    type,
    typeflag,
    mode: readOctal(block, 100, 8) & 0o7777,
    uid: readOctal(block, 108, 8),
    gid: readOctal(block, 116, 8),
    sizeBytes: readOctal(block, 124, 12),
    mtimeSeconds: readOctal(block, 136, 12),
    linkTarget: cString(block, 157, 100),
    uname: cString(block, 265, 32).toString('utf8'),
    gname: cString(block, 297, 32).toString('utf8'),
    deviceMajor: readOctal(block, 329, 8),
    deviceMinor: readOctal(block, 337, 8),
    pax: {},
  };
}

/** Parses pax extended-header records into raw values keyed by name. */
export function decodePaxRecords(data: Buffer, where: string): Record<string, Buffer> {
  const records: Record<string, Buffer> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : parseInt(data.toString('latin1', at, space), 10);
    if (!Number.isFinite(length) || length <= 0 || at + length > data.length) {
      if (data.subarray(at).every((b) => b === 0)) break;
      throw new RedoError('ERR_TAR_MALFORMED', `redo: "${where}": malformed pax header record at byte ${at}`);
    }
    const record = data.subarray(space + 1, at + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals !== -1) records[record.toString('utf8', 0, equals)] = Buffer.from(record.subarray(equals + 1));
    at += length;
  }
  return records;
}

/** Applies pax records to a decoded header (path, linkpath, size, uid, gid, mtime). */
export function applyPax(header: TarHeaderFields, pax: Record<string, Buffer>): TarHeaderFields {
  const next = { ...header, pax };
  if (pax['path'] !== undefined) next.path = pax['path'];
  if (pax['linkpath'] !== undefined) next.linkTarget = pax['linkpath'];
  if (pax['size'] !== undefined) next.sizeBytes = parseInt(pax['size'].toString('latin1'), 10);
  if (pax['uid'] !== undefined) next.uid = parseInt(pax['uid'].toString('latin1'), 10);
  if (pax['gid'] !== undefined) next.gid = parseInt(pax['gid'].toString('latin1'), 10);
  if (pax['mtime'] !== undefined) next.mtimeSeconds = Math.floor(parseFloat(pax['mtime'].toString('latin1')));
  if (next.type === 'file' && next.path.length > 0 && next.path[next.path.length - 1] === 0x2f) next.type = 'directory';
  return next;
}
