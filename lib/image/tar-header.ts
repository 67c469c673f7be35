/** The tar entry type and the byte-exact POSIX ustar/pax header codec every layer uses. */

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
 * One normalised archive member. `path` holds the raw name bytes (so names that are
 * not UTF-8 survive): relative, POSIX, no leading `./` or `/`, no trailing `/`, no
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

const typeflags: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
};

/** Largest values the ustar numeric fields can hold (octal digits, NUL-terminated). */
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

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

/** Writes `value` as zero-padded octal in `width - 1` digits plus a NUL, as GNU tar does. */
function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  block.write(digits, offset, width - 1, 'latin1');
  block[offset + width - 1] = 0;
}

/**
 * Splits a name into ustar prefix (<= 155 bytes) and name (<= 100 bytes) at a `/`,
 * choosing the longest possible prefix's earliest valid split so the result is unique.
 * Returns null when no split fits.
 */
function splitUstarName(name: Buffer): { prefix: Buffer; name: Buffer } | null {
  if (name.length <= 100) return { prefix: Buffer.alloc(0), name };
  if (name.length > 256) return null;
  // The earliest slash that leaves <= 100 bytes after it, with <= 155 before it.
  for (let i = Math.max(0, name.length - 101); i < name.length && i <= 155; i++) {
    if (name[i] === 0x2f && i > 0 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) {
      return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
    }
  }
  return null;
}

function isUtf8(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

/** One pax record: "<len> key=value\n" where len counts the whole record. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'latin1'), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
}

function encodeUstar(
  fields: {
    name: Buffer;
    prefix: Buffer;
    mode: number;
    uid: number;
    gid: number;
    sizeBytes: number;
    mtimeSeconds: number;
    typeflag: string;
    linkTarget: Buffer;
    deviceMajor: number;
    deviceMinor: number;
  },
): Buffer {
  // POSIX ustar header, 512 bytes:
  //   0 name[100]  100 mode[8]  108 uid[8]  116 gid[8]  124 size[12]  136 mtime[12]
  //   148 chksum[8]  156 typeflag[1]  157 linkname[100]  257 magic "ustar\0"
  //   263 version "00"  265 uname[32]  297 gname[32]  329 devmajor[8]
  //   337 devminor[8]  345 prefix[155]  500 pad[12]
  // uname/gname stay empty (all NUL) so no host account name reaches the bytes.
  const block = Buffer.alloc(BLOCK_BYTES);
  fields.name.copy(block, 0);
  writeOctal(block, 100, 8, fields.mode);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.sizeBytes);
  writeOctal(block, 136, 12, fields.mtimeSeconds);
  block.write(fields.typeflag, 156, 1, 'latin1');
  fields.linkTarget.copy(block, 157);
  block.write('ustar\u000000', 257, 8, 'latin1');
  writeOctal(block, 329, 8, fields.deviceMajor);
  writeOctal(block, 337, 8, fields.deviceMinor);
  fields.prefix.copy(block, 345);
  // Checksum: sum of all bytes with the checksum field read as spaces; stored as six
  // octal digits, NUL, space (the form GNU tar and Go's archive/tar write).
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK_BYTES; i++) sum += block[i]!;
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
  return block;
}

/**
 * Encodes the header block(s) of one entry: a single ustar block when every field
 * fits, else a pax extended header (`././@PaxHeader`, typeflag `x`) carrying only the
 * fields that do not fit, in key order, followed by the ustar block. Directory names
 * get a trailing `/`. The result depends only on the arguments.
 */
export function encodeHeader(entry: TarEntry, mtimeSeconds: number): Buffer {
  const typeflag = typeflags[entry.type];
  const name = entry.type === 'directory' ? Buffer.concat([entry.path, SLASH]) : entry.path;
  const isContentType = entry.type === 'file';
  const sizeBytes = isContentType ? entry.sizeBytes : 0;
  const linkTarget = entry.type === 'symlink' || entry.type === 'hardlink' ? entry.linkTarget ?? Buffer.alloc(0) : Buffer.alloc(0);
  const pax: Array<[string, Buffer]> = [];

  const split = splitUstarName(name);
  if (split === null) pax.push(['path', name]);
  if (linkTarget.length > 100) pax.push(['linkpath', linkTarget]);
  if (sizeBytes > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(sizeBytes))]);
  if (entry.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(entry.uid))]);
  if (entry.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(entry.gid))]);
  if (mtimeSeconds > MAX_OCTAL_11) pax.push(['mtime', Buffer.from(String(mtimeSeconds))]);

  const ustar = encodeUstar({
    name: split === null ? name.subarray(0, 100) : split.name,
    prefix: split === null ? Buffer.alloc(0) : split.prefix,
    mode: entry.mode & 0o7777,
    uid: entry.uid > MAX_OCTAL_7 ? 0 : entry.uid,
    gid: entry.gid > MAX_OCTAL_7 ? 0 : entry.gid,
    sizeBytes: sizeBytes > MAX_OCTAL_11 ? 0 : sizeBytes,
    mtimeSeconds: mtimeSeconds > MAX_OCTAL_11 ? 0 : mtimeSeconds,
    typeflag,
    linkTarget: linkTarget.subarray(0, 100),
    deviceMajor: entry.deviceMajor ?? 0,
    deviceMinor: entry.deviceMinor ?? 0,
  });
  if (pax.length === 0) return ustar;

  const hasBinary = pax.some(([key, value]) => (key === 'path' || key === 'linkpath') && !isUtf8(value));
  // Raw non-UTF-8 names are kept byte for byte and flagged, as GNU tar does.
  if (hasBinary) pax.push(['hdrcharset', Buffer.from('BINARY')]);
  pax.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const records = Buffer.concat(pax.map(([key, value]) => paxRecord(key, value)));
  const paxHeader = encodeUstar({
    name: Buffer.from('././@PaxHeader'),
    prefix: Buffer.alloc(0),
    mode: 0o644,
    uid: 0,
    gid: 0,
    sizeBytes: records.length,
    mtimeSeconds: Math.min(mtimeSeconds, MAX_OCTAL_11),
    typeflag: 'x',
    linkTarget: Buffer.alloc(0),
    deviceMajor: 0,
    deviceMinor: 0,
  });
  return Buffer.concat([paxHeader, records, Buffer.alloc(paddingBytes(records.length)), ustar]);
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
