/** Deterministic tar writing, byte for byte tar-stream's pack() (its ustar encoder ported, tar-stream itself for pax headers), and tar reading (the only module that imports tar-stream). */

import { createHash, type Hash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { closeSync, createReadStream, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import type { Header as PackHeader, Pack } from 'tar-stream';
import { RedoError } from '../errors.js';
import { finishDigest, type Sha256Digest } from './digest.js';
import { OffThreadSink } from './off-thread-sink.js';
import {
  BLOCK_BYTES,
  applyPax,
  comparePaths,
  decodeHeader,
  decodePaxRecords,
  isZeroBlock,
  paddingBytes,
  pathText,
  toMemberPath,
  type TarEntry,
  type TarEntryType,
  type TarHeaderFields,
} from './tar-header.js';

export type { TarEntry, TarEntryType, TarContent, TarHeaderFields } from './tar-header.js';
export { toMemberPath, comparePaths, pathText } from './tar-header.js';

/**
 * tar-stream, loaded on first use (a pax header, reading a tar): writing a plain layer
 * never needs it, and loading it costs a process about 12 ms of CPU.
 */
async function loadTarStream(): Promise<typeof import('tar-stream')> {
  return (await import('tar-stream')).default;
}

/** Largest mtime mtimeFromEnvironment returns: what a ustar mtime field holds (8^11 - 1 seconds). */
const MAX_USTAR_MTIME = 0o77777777777;

/**
 * The mtime every member gets: `SOURCE_DATE_EPOCH` from `env` when set (clamped to
 * 0..8^11-1, the ustar field's range), else 0. Throws ERR_SOURCE_DATE_EPOCH when the
 * variable is set to anything but a non-negative integer.
 */
export function mtimeFromEnvironment(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['SOURCE_DATE_EPOCH'];
  if (raw === undefined || raw === '') return 0;
  if (!/^[0-9]+$/.test(raw.trim())) {
    throw new RedoError('ERR_SOURCE_DATE_EPOCH', `redo: "SOURCE_DATE_EPOCH": not a number of seconds`, {
      details: ['wanted: a non-negative integer', `found: ${JSON.stringify(raw)}`],
    });
  }
  return Math.min(Number(raw.trim()), MAX_USTAR_MTIME);
}

/** Options for writeTar. */
export interface WriteTarOptions {
  /** Seconds since the epoch for every member; default mtimeFromEnvironment(). */
  mtimeSeconds?: number;
  /** Name used in error messages for the archive being written. */
  label?: string;
}

/** What writeTar produced: the sha256 of the uncompressed tar (a layer's diffID) and its size. */
export interface TarResult {
  diffId: Sha256Digest;
  sizeBytes: number;
}

// What tar-stream 3's header encoder (headers.js `encode`) can hold, and so where we
// switch to a pax record ourselves instead of letting a value be cut:
// - mode, uid, gid, devmajor, devminor: 6 octal digits and a space; larger values
//   become "777777" silently, so ids above go to pax `uid`/`gid` (ustar field 0) and
//   device numbers above are refused (pax has no standard record for them).
// - size: 11 octal digits; larger sizes are written in GNU base-256, and we add a
//   pax `size` record so POSIX readers agree.
// - mtime: `(ms / 1000) | 0`, a signed 32-bit count; later times go to pax `mtime`
//   (ustar field 2^31 - 1).
// - names: ASCII names up to 100 bytes, or split at a `/` into prefix (155) and name
//   (100), stay in the ustar block; any other name (longer, or with a non-ASCII
//   character) goes to a pax member holding `path` (and `linkpath`). Names are JS
//   strings written as UTF-8, so a name that is not valid UTF-8 cannot be written
//   at all: we refuse it (ERR_LAYER_UNREPRESENTABLE) rather than store other bytes.
const MAX_PACK_OCTAL_6 = 0o777777;
const MAX_PACK_SIZE = 0o77777777777;
const MAX_PACK_MTIME = 0x7fffffff;

/**
 * File-type bits added to every mode we hand to tar-stream. They never reach the
 * bytes (tar-stream masks the mode with 0o7777) but keep the mode non-zero, since
 * tar-stream replaces a mode of 0 with its own default (0644 or 0755).
 */
const typeBits: Record<TarEntryType, number> = {
  file: 0o100000,
  hardlink: 0o100000,
  symlink: 0o120000,
  directory: 0o040000,
  fifo: 0o010000,
  'character-device': 0o020000,
  'block-device': 0o060000,
};

const packTypes: Record<TarEntryType, PackHeader['type']> = {
  file: 'file',
  hardlink: 'link',
  symlink: 'symlink',
  directory: 'directory',
  fifo: 'fifo',
  'character-device': 'character-device',
  'block-device': 'block-device',
};

/**
 * Bytes as text for messages, valid UTF-8 kept and every other byte written `\xHH`
 * (the escape the metadata table format uses for raw bytes).
 */
function escapedText(bytes: Buffer): string {
  let text = '';
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    const length = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    try {
      text += decoder.decode(bytes.subarray(i, i + length));
      i += length;
    } catch {
      text += `\\x${lead.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return text;
}

function unrepresentable(entry: TarEntry, label: string, what: string, found: string, hint: string): RedoError {
  return new RedoError('ERR_LAYER_UNREPRESENTABLE', `redo: "${escapedText(entry.path)}": ${what}, which cannot be written into ${label}`, {
    details: [found],
    hint,
  });
}

/**
 * Refuses what tar-stream cannot write as given: a name or link target that is not
 * valid UTF-8 and device numbers over 262143 (ERR_LAYER_UNREPRESENTABLE, naming the
 * member with its bytes escaped).
 */
function checkRepresentable(entry: TarEntry, label: string): void {
  if (!isUtf8(entry.path)) {
    throw unrepresentable(entry, label, 'its name is not valid UTF-8', `name bytes: ${escapedText(entry.path)}`,
      'tar members are written with UTF-8 names: rename the file (or leave it out of the layer)');
  }
  if ((entry.type === 'symlink' || entry.type === 'hardlink') && entry.linkTarget !== undefined && !isUtf8(entry.linkTarget)) {
    throw unrepresentable(entry, label, 'its link target is not valid UTF-8', `link target bytes: ${escapedText(entry.linkTarget)}`,
      'tar members are written with UTF-8 link targets: point the link at a UTF-8 name');
  }
  const deviceMajor = entry.deviceMajor ?? 0;
  const deviceMinor = entry.deviceMinor ?? 0;
  if (deviceMajor > MAX_PACK_OCTAL_6 || deviceMinor > MAX_PACK_OCTAL_6) {
    throw unrepresentable(entry, label, `device number ${deviceMajor},${deviceMinor} is over ${MAX_PACK_OCTAL_6}`,
      `wanted: major and minor up to ${MAX_PACK_OCTAL_6}`, 'leave the device out of the layer and create it at run time');
  }
}

/**
 * The tar-stream header for one entry that passed checkRepresentable, every field set
 * by us so none of tar-stream's defaults (a missing mtime becomes the current time, a
 * zero mode a default mode) can reach the bytes.
 */
function packHeaderOf(entry: TarEntry, mtimeSeconds: number): PackHeader {
  const hasLink = entry.type === 'symlink' || entry.type === 'hardlink';
  const sizeBytes = entry.type === 'file' ? entry.sizeBytes : 0;
  // Pax records beyond path/linkpath (which tar-stream adds itself), inserted in key
  // order so the record order is fixed.
  let pax: Record<string, string> | null = null;
  if (entry.gid > MAX_PACK_OCTAL_6 || entry.uid > MAX_PACK_OCTAL_6 || mtimeSeconds > MAX_PACK_MTIME || sizeBytes > MAX_PACK_SIZE) {
    pax = {};
    if (entry.gid > MAX_PACK_OCTAL_6) pax['gid'] = String(entry.gid);
    if (mtimeSeconds > MAX_PACK_MTIME) pax['mtime'] = String(mtimeSeconds);
    if (sizeBytes > MAX_PACK_SIZE) pax['size'] = String(sizeBytes);
    if (entry.uid > MAX_PACK_OCTAL_6) pax['uid'] = String(entry.uid);
  }
  return {
    // tar-stream 3 does not add the directory slash itself (it tests a `typeflag`
    // field it never sets), so we do, as GNU tar writes it.
    name: entry.path.toString('utf8') + (entry.type === 'directory' ? '/' : ''),
    mode: (entry.mode & 0o7777) | typeBits[entry.type],
    uid: entry.uid > MAX_PACK_OCTAL_6 ? 0 : entry.uid,
    gid: entry.gid > MAX_PACK_OCTAL_6 ? 0 : entry.gid,
    size: sizeBytes,
    mtime: new Date(Math.min(mtimeSeconds, MAX_PACK_MTIME) * 1000),
    type: packTypes[entry.type],
    linkname: hasLink && entry.linkTarget !== undefined ? entry.linkTarget.toString('utf8') : '',
    uname: '',
    gname: '',
    devmajor: entry.deviceMajor ?? 0,
    devminor: entry.deviceMinor ?? 0,
    pax,
  };
}

const STAGING_BYTES = 1 << 20;
/** Files up to this size are read in one synchronous read; larger ones in chunks of it. */
const CHUNK_BYTES = 1 << 20;

/**
 * A layer whose files hold at least this many bytes is hashed and written off the main
 * thread (OffThreadSink). Below it, starting the worker (a V8 isolate: 20-60 ms of a
 * core) costs more than the sha256 it would take over (about 20 ms for 32 MiB).
 */
const OFF_THREAD_BYTES = 32 << 20;

/** Chunks at least this big skip the staging copy when writing to a file. */
const DIRECT_WRITE_BYTES = 256 << 10;

/** Writes all of `bytes` at `positionBytes`, or at the current offset when it is null (a pipe, a device). */
function writeFully(fd: number, bytes: Buffer, positionBytes: number | null): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at, positionBytes === null ? null : positionBytes + at);
}

const ZERO_CHUNK = Buffer.alloc(CHUNK_BYTES);

/** True when `chunk` (at most CHUNK_BYTES) holds only zero bytes (one memcmp). */
function isAllZero(chunk: Buffer): boolean {
  return chunk.length <= ZERO_CHUNK.length && chunk.equals(ZERO_CHUNK.subarray(0, chunk.length));
}

/**
 * Where the packed bytes go: staged in 1 MiB blocks and hashed on the way. Writing to
 * a file uses synchronous writes (a layer build is the only thing this process is
 * doing, and it avoids a thread-pool round trip per block); writing to a stream
 * reports backpressure so the pack can be paused.
 */
class TarSink {
  private staging = Buffer.allocUnsafe(STAGING_BYTES);
  private used = 0;
  readonly hash: Hash = createHash('sha256');
  sizeBytes = 0;

  /** Only a regular file takes positioned writes, holes and a final ftruncate; /dev/null or a FIFO is written in order. */
  private readonly isRegularFile: boolean;

  constructor(
    private readonly fd: number | null,
    private readonly stream: Writable | null,
  ) {
    this.isRegularFile = fd !== null && fstatSync(fd).isFile();
  }

  /**
   * Takes `chunk` (the caller may reuse it once this returns); false when the output
   * stream wants a 'drain'.
   */
  write(chunk: Buffer): boolean {
    if (this.fd !== null && chunk.length >= DIRECT_WRITE_BYTES) {
      // A big chunk goes straight to the file after what is staged, saving a copy. A
      // chunk of zeros (a sparse file's hole) is skipped over, leaving a hole that
      // reads back as the same zeros; finish() sets the file's final length.
      this.flush();
      this.hash.update(chunk);
      if (!this.isRegularFile) writeFully(this.fd, chunk, null);
      else if (!isAllZero(chunk)) writeFully(this.fd, chunk, this.sizeBytes);
      this.sizeBytes += chunk.length;
      return true;
    }
    let isReady = true;
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, STAGING_BYTES - this.used);
      chunk.copy(this.staging, this.used, at, at + n);
      this.used += n;
      at += n;
      if (this.used === STAGING_BYTES) isReady = this.flush() && isReady;
    }
    return isReady;
  }

  /** Writes out what is staged and gives a file output its full length (a skipped hole may end it). */
  finish(): void {
    this.flush();
    if (this.fd !== null && this.isRegularFile) ftruncateSync(this.fd, this.sizeBytes);
  }

  /** Hashes and writes out the staged bytes; false when the output stream wants a 'drain'. */
  flush(): boolean {
    if (this.used === 0) return true;
    const block = this.staging.subarray(0, this.used);
    this.hash.update(block);
    this.sizeBytes += block.length;
    if (this.fd !== null) {
      writeFully(this.fd, block, this.isRegularFile ? this.sizeBytes - block.length : null);
      this.used = 0;
      return true;
    }
    // A stream keeps the buffer it is given, so hand over this block and start a new one.
    this.staging = Buffer.allocUnsafe(STAGING_BYTES);
    this.used = 0;
    return this.stream!.write(block);
  }
}

/** One member handed to tar-stream: its body sink and a promise for its completion. */
interface PackedMember {
  sink: ReturnType<Pack['entry']>;
  /** Settles once the member's bytes are all in the pack (or it failed). */
  finished: Promise<void>;
}

function addMember(pack: Pack, header: PackHeader, body?: Buffer): PackedMember {
  let sink!: PackedMember['sink'];
  const finished = new Promise<void>((resolve, reject) => {
    const callback = (error?: Error | null): void => (error ? reject(error) : resolve());
    sink = body === undefined ? pack.entry(header, callback) : pack.entry(header, body, callback);
  });
  // A member cut short by a failure rejects; the failure is reported by writeTar.
  finished.catch(() => undefined);
  return { sink, finished };
}

function readError(entry: TarEntry, label: string, detail: string, cause?: unknown): RedoError {
  return new RedoError('ERR_LAYER_READ', `redo: "${pathText(entry.path)}": could not read the file going into ${label}`, {
    details: [detail],
    cause,
  });
}

function errnoText(cause: unknown): string {
  return (cause as NodeJS.ErrnoException).code ?? String(cause);
}

/**
 * Reads `want` bytes at `position` (fewer at end of file); returns how many were read.
 * Stops early, after a read, once `enough` bytes are in: a whole file is asked for one
 * byte past its listed size (the probe that catches a file that grew), and a read that
 * returns exactly the listed size is a regular file's end, so the probe costs no second
 * read (a short read below `enough` is read on, and a file that shrank ends with a read
 * of 0). Throws ERR_LAYER_READ naming the member.
 */
function readAt(fd: number, into: Buffer, want: number, position: number, entry: TarEntry, label: string, enough = want, intoOffset = 0): number {
  let got = 0;
  while (got < want) {
    let n: number;
    try {
      n = readSync(fd, into, intoOffset + got, want - got, position + got);
    } catch (cause) {
      throw readError(entry, label, `read: ${errnoText(cause)}`, cause);
    }
    if (n === 0) break;
    got += n;
    if (got >= enough) break;
  }
  return got;
}

function sizeChanged(entry: TarEntry, label: string, found: string): RedoError {
  return readError(entry, label, `size: wanted ${entry.sizeBytes} bytes, found ${found} (the file changed while it was read?)`);
}

/** What every member's content is written into: the sink, waiting for 'drain' when it writes to a stream. */
type PutBytes = (bytes: Buffer) => Promise<void> | void;

const ZERO_BLOCKS = Buffer.alloc(2 * BLOCK_BYTES);
/** The header block writeMemberSync encodes into: the sink copies it before the next member. */
const HEADER_SCRATCH = Buffer.alloc(BLOCK_BYTES);
const USTAR_MAGIC_AND_VERSION = Buffer.from('ustar\x0000', 'latin1');
const OCTAL_SEVENS = '7777777777777777777';
const OCTAL_ZEROS = '0000000000000000000';
const ustarTypeflags: Record<string, number> = { file: 0, link: 1, symlink: 2, 'character-device': 3, 'block-device': 4, directory: 5, fifo: 6 };

/** tar-stream 3's encodeOct: `n` octal digits, zero-padded, then a space ("777…" when too long). */
function encodeOctal(value: number, digits: number): string {
  const text = value.toString(8);
  if (text.length > digits) return `${OCTAL_SEVENS.slice(0, digits)} `;
  return `${OCTAL_ZEROS.slice(0, digits - text.length)}${text} `;
}

/**
 * The 512-byte ustar block tar-stream 3's pack() writes for `header` (headers.js
 * `encode`, ported line for line so the bytes are the same: test/unit/image/tar.test.ts
 * compares the two on every kind of member), or null when tar-stream would write a pax
 * member first (the header asks for pax records, a name or link target is not ASCII or
 * does not fit): the caller then asks tar-stream itself (packedHeaderBlocks). Writing
 * the common header here instead of through a tar-stream member stream is what makes a
 * member cost about 12 microseconds instead of 24. Writes into `into` (512 bytes,
 * cleared first) when given, else into a new buffer; returns the block.
 */
export function ustarHeaderBlock(header: PackHeader, into?: Buffer): Buffer | null {
  if (header.pax !== undefined && header.pax !== null) return null;
  let name = header.name;
  let prefix = '';
  if (Buffer.byteLength(name) !== name.length) return null;
  while (Buffer.byteLength(name) > 100) {
    const i = name.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) return null;
  const linkname = header.linkname ?? '';
  if (linkname !== '' && Buffer.byteLength(linkname) > 100) return null;
  const size = header.size ?? 0;
  // GNU base-256 sizes (over 8 GiB) are rare: tar-stream writes those.
  if (size.toString(8).length > 11) return null;
  const block = into === undefined ? Buffer.alloc(BLOCK_BYTES) : into.fill(0, 0, BLOCK_BYTES);
  block.write(name, 0);
  block.write(encodeOctal((header.mode ?? 0) & 0o7777, 6), 100);
  block.write(encodeOctal(header.uid ?? 0, 6), 108);
  block.write(encodeOctal(header.gid ?? 0, 6), 116);
  block.write(encodeOctal(size, 11), 124);
  block.write(encodeOctal(((header.mtime as Date).getTime() / 1000) | 0, 11), 136);
  block[156] = 0x30 + (ustarTypeflags[header.type as string] ?? 0);
  if (linkname !== '') block.write(linkname, 157);
  USTAR_MAGIC_AND_VERSION.copy(block, 257);
  if (header.uname) block.write(header.uname, 265);
  if (header.gname) block.write(header.gname, 297);
  block.write(encodeOctal(header.devmajor || 0, 6), 329);
  block.write(encodeOctal(header.devminor || 0, 6), 337);
  if (prefix) block.write(prefix, 345);
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK_BYTES; i++) sum += block[i]!;
  block.write(encodeOctal(sum, 6), 148);
  return block;
}

const entryTypeflags: Record<TarEntryType, number> = {
  file: 0, hardlink: 1, symlink: 2, 'character-device': 3, 'block-device': 4, directory: 5, fifo: 6,
};

/**
 * Writes `value` as `digits` zero-padded octal digits and a space at `at` (value known
 * to fit); returns the sum of the bytes written (for the header checksum).
 */
function putOctal(block: Buffer, at: number, value: number, digits: number): number {
  block[at + digits] = 0x20;
  let sum = 0x20 + 0x30 * digits;
  for (let i = digits - 1; i >= 0; i--) {
    const digit = value % 8;
    block[at + i] = 0x30 + digit;
    sum += digit;
    value = Math.floor(value / 8);
  }
  return sum;
}

/** The sum of the bytes of `bytes` when every one is below 0x80 (so it is the same in latin1, UTF-8 and a JS string), else -1. */
function asciiByteSum(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte >= 0x80) return -1;
    sum += byte;
  }
  return sum;
}

/** The byte sum of "ustar\0" "00" (the magic and version every block holds). */
const USTAR_MAGIC_AND_VERSION_SUM = USTAR_MAGIC_AND_VERSION.reduce((sum, byte) => sum + byte, 0);

/**
 * The ustar block of a normalised, representable `entry` at `mtimeSeconds` (already
 * clamped and floored), the same bytes as `ustarHeaderBlock(packHeaderOf(entry,
 * mtimeSeconds))` but encoded straight from the entry, with no header object, Date or
 * string per member: the common member (an ASCII name of up to 100 bytes with its
 * directory slash, an ASCII link target of up to 100, ids and mtime that need no pax
 * record). Returns null for anything else, which the caller hands to the general
 * encoder. Writes into `into` (512 bytes). test/unit/image/tar.test.ts compares the two.
 */
export function plainHeaderBlock(entry: TarEntry, mtimeSeconds: number, into: Buffer): Buffer | null {
  const path = entry.path;
  const nameBytes = path.length + (entry.type === 'directory' ? 1 : 0);
  const sizeBytes = entry.type === 'file' ? entry.sizeBytes : 0;
  if (nameBytes > 100 || entry.uid > MAX_PACK_OCTAL_6 || entry.gid > MAX_PACK_OCTAL_6 || mtimeSeconds > MAX_PACK_MTIME || sizeBytes > MAX_PACK_SIZE) return null;
  const pathSum = asciiByteSum(path);
  if (pathSum === -1) return null;
  const link = entry.type === 'symlink' || entry.type === 'hardlink' ? entry.linkTarget : undefined;
  const linkSum = link === undefined ? 0 : link.length > 100 ? -1 : asciiByteSum(link);
  if (linkSum === -1) return null;
  const block = into.fill(0, 0, BLOCK_BYTES);
  // The checksum (POSIX: the sum of the block's bytes with its own field as 8 spaces)
  // is summed as the fields are written: the rest of the block is zeros.
  let sum = 8 * 32 + pathSum + linkSum + USTAR_MAGIC_AND_VERSION_SUM;
  path.copy(block, 0);
  if (entry.type === 'directory') {
    block[path.length] = 0x2f;
    sum += 0x2f;
  }
  sum += putOctal(block, 100, entry.mode & 0o7777, 6);
  sum += putOctal(block, 108, entry.uid, 6);
  sum += putOctal(block, 116, entry.gid, 6);
  sum += putOctal(block, 124, sizeBytes, 11);
  sum += putOctal(block, 136, mtimeSeconds, 11);
  block[156] = 0x30 + entryTypeflags[entry.type];
  sum += block[156]!;
  if (link !== undefined) link.copy(block, 157);
  USTAR_MAGIC_AND_VERSION.copy(block, 257);
  sum += putOctal(block, 329, entry.deviceMajor ?? 0, 6);
  sum += putOctal(block, 337, entry.deviceMinor ?? 0, 6);
  putOctal(block, 148, sum, 6);
  return block;
}

/**
 * Writes one member: its header block(s), its content (files only) and the zero padding
 * to the next 512-byte boundary, in the pieces tar-stream's pack() emitted them (header,
 * each content chunk, padding), so the sink stages and skips holes exactly as before.
 * `buffer` (CHUNK_BYTES + 1) is reused for every read: the sink copies or writes a piece
 * before `put` returns.
 */
async function writeMember(put: PutBytes, buffer: Buffer, entry: TarEntry, mtimeSeconds: number, label: string): Promise<void> {
  const header = packHeaderOf(entry, mtimeSeconds);
  await put(ustarHeaderBlock(header) ?? (await packedHeaderBlocks(entry, mtimeSeconds)));
  if (entry.type !== 'file') return;
  const content = entry.content;
  if (content === undefined) {
    if (entry.sizeBytes !== 0) throw readError(entry, label, `no content given for ${entry.sizeBytes} bytes`);
    return;
  }
  switch (content.kind) {
    case 'buffer':
      if (content.bytes.length !== entry.sizeBytes) throw readError(entry, label, `size: wanted ${entry.sizeBytes}, found ${content.bytes.length}`);
      if (content.bytes.length > 0) await put(content.bytes);
      break;
    case 'path':
      await writeFileContent(put, buffer, entry, content.path, content.offsetBytes, label);
      break;
    case 'stream': {
      let written = 0;
      for await (const piece of content.open()) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
        written += bytes.length;
        if (written > entry.sizeBytes) break;
        if (bytes.length > 0) await put(bytes);
      }
      if (written !== entry.sizeBytes) throw sizeChanged(entry, label, String(written));
      break;
    }
    default: {
      const impossible: never = content;
      throw new Error(`unknown content kind ${JSON.stringify(impossible)}`);
    }
  }
  const rest = entry.sizeBytes % BLOCK_BYTES;
  if (rest !== 0) await put(ZERO_BLOCKS.subarray(0, BLOCK_BYTES - rest));
}

/**
 * writeMember without a single await, for a file output (whose writes are synchronous):
 * a member whose header is a plain ustar block and whose content is a buffer or a file.
 * Returns false, having written nothing, for any other member (writeMember takes it).
 */
function writeMemberSync(write: (bytes: Buffer) => void, buffer: Buffer, entry: TarEntry, mtimeSeconds: number, label: string, offThread: OffThreadSink | null): boolean {
  if (entry.type === 'file' && entry.content?.kind === 'stream') return false;
  const block = plainHeaderBlock(entry, mtimeSeconds, HEADER_SCRATCH) ?? ustarHeaderBlock(packHeaderOf(entry, mtimeSeconds), HEADER_SCRATCH);
  if (block === null) return false;
  write(block);
  if (entry.type !== 'file') return true;
  const content = entry.content;
  if (content === undefined) {
    if (entry.sizeBytes !== 0) throw readError(entry, label, `no content given for ${entry.sizeBytes} bytes`);
    return true;
  }
  if (content.kind === 'buffer') {
    if (content.bytes.length !== entry.sizeBytes) throw readError(entry, label, `size: wanted ${entry.sizeBytes}, found ${content.bytes.length}`);
    if (content.bytes.length > 0) write(content.bytes);
  } else if (content.kind === 'path') {
    if (offThread !== null) readFileInto(offThread, entry, content.path, content.offsetBytes, label);
    else for (const chunk of fileChunks(buffer, entry, content.path, content.offsetBytes, label)) write(chunk);
  }
  const rest = entry.sizeBytes % BLOCK_BYTES;
  if (rest !== 0) {
    if (offThread !== null) offThread.writeZeros(BLOCK_BYTES - rest);
    else write(ZERO_BLOCKS.subarray(0, BLOCK_BYTES - rest));
  }
  return true;
}

/** Opens the file a member's content is read from; ERR_LAYER_READ naming the member when it cannot. */
function openMember(entry: TarEntry, path: string | Buffer, label: string): number {
  try {
    return openSync(path, 'r');
  } catch (cause) {
    throw readError(entry, label, `open: ${errnoText(cause)}`, cause);
  }
}

/**
 * Checks one read of `n` bytes (`want` asked, `remaining` of the member left after
 * `written`): more than the member holds means the file grew, a short read before its
 * end that it shrank; both ERR_LAYER_READ naming the member.
 */
function checkReadSize(entry: TarEntry, label: string, n: number, want: number, remaining: number, written: number): void {
  if (n > remaining) throw sizeChanged(entry, label, 'more');
  if (n < want && n < remaining) throw sizeChanged(entry, label, String(written + n));
}

/** Writes the content of a file member from (part of) a file on disk, in chunks of CHUNK_BYTES, waiting on `put`. */
async function writeFileContent(put: PutBytes, buffer: Buffer, entry: TarEntry, path: string | Buffer, offsetBytes: number | undefined, label: string): Promise<void> {
  // The generator reads the next chunk into `buffer` only after put has taken this one.
  for (const chunk of fileChunks(buffer, entry, path, offsetBytes, label)) await put(chunk);
}

/**
 * Reads the content of a file member from (part of) a file on disk straight into the
 * ring of `sink`, with the checks fileChunks makes (a whole file is read one byte past
 * its size, so one that grew is caught; one that shrank is caught by a short read).
 */
function readFileInto(sink: OffThreadSink, entry: TarEntry, path: string | Buffer, offsetBytes: number | undefined, label: string): void {
  const fd = openMember(entry, path, label);
  try {
    const extra = offsetBytes === undefined ? 1 : 0;
    const start = offsetBytes ?? 0;
    let written = 0;
    while (written < entry.sizeBytes || extra === 1) {
      const remaining = entry.sizeBytes - written;
      const at = sink.freeOffset();
      const want = Math.min(sink.freeBytes(), remaining + extra);
      const n = readAt(fd, sink.ring, want, start + written, entry, label, Math.min(want, remaining), at);
      checkReadSize(entry, label, n, want, remaining, written);
      sink.commit(n);
      written += n;
      // Done once a read came back short of what was asked (the probe byte found nothing).
      if (n < want) break;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The content of a file member from (part of) a file on disk, read into `buffer`
 * (CHUNK_BYTES + 1) in chunks of CHUNK_BYTES: each chunk is valid until the next is
 * asked for. Throws ERR_LAYER_READ naming the member when the file cannot be read or
 * its size is not the listed one; the file is closed when the iteration ends.
 */
export function* fileChunks(buffer: Buffer, entry: TarEntry, path: string | Buffer, offsetBytes: number | undefined, label: string): Generator<Buffer> {
  const fd = openMember(entry, path, label);
  try {
    // A whole file (no offset) is read one byte past its size, so a file that grew
    // since it was listed shows up without an extra fstat per file.
    const extra = offsetBytes === undefined ? 1 : 0;
    const start = offsetBytes ?? 0;
    let written = 0;
    do {
      const remaining = entry.sizeBytes - written;
      const want = Math.min(CHUNK_BYTES, remaining + extra);
      const n = readAt(fd, buffer, want, start + written, entry, label, Math.min(want, remaining));
      checkReadSize(entry, label, n, want, remaining, written);
      if (n > 0) yield buffer.subarray(0, n);
      written += n;
    } while (written < entry.sizeBytes);
  } finally {
    closeSync(fd);
  }
}

/**
 * True when `entries` is already what normaliseEntries would return (collectEntries'
 * output is): sorted by path bytes with no path twice, every parent an earlier
 * directory, and no hardlink (whose metadata normaliseEntries may rewrite). One pass
 * and no sort, instead of a map of every path and a sort; anything else takes the full
 * path, which also reports the errors.
 */
function isNormalised(entries: TarEntry[]): boolean {
  const directories = new Set<string>();
  let previous: Buffer | null = null;
  for (const entry of entries) {
    const path = entry.path;
    if (entry.type === 'hardlink' || (previous !== null && comparePaths(previous, path) >= 0)) return false;
    const end = path.lastIndexOf(0x2f);
    if (end > 0 && !directories.has(path.toString('latin1', 0, end))) return false;
    if (entry.type === 'directory') directories.add(path.toString('latin1'));
    previous = path;
  }
  return true;
}

/**
 * Returns `entries` sorted by path bytes with every missing parent directory added
 * (mode 0755, uid 0, gid 0); a hardlink takes its target's mode, uid and gid (they
 * share an inode). Throws ERR_LAYER_CONFLICT when a path is given twice or a parent
 * is not a directory, ERR_LAYER_PATH when a hardlink points at a path that is not an
 * earlier file.
 */
export function normaliseEntries(entries: Iterable<TarEntry>, label = 'the archive'): TarEntry[] {
  const list = Array.isArray(entries) ? (entries as TarEntry[]) : [...entries];
  if (isNormalised(list)) return list.slice();
  const byPath = new Map<string, TarEntry>();
  for (const entry of list) {
    const key = entry.path.toString('latin1');
    const previous = byPath.get(key);
    if (previous !== undefined) {
      throw new RedoError('ERR_LAYER_CONFLICT', `redo: "${pathText(entry.path)}": given twice for ${label}`, {
        details: [`first: ${previous.type}`, `second: ${entry.type}`],
      });
    }
    byPath.set(key, entry);
  }
  for (const entry of [...byPath.values()]) {
    let end = entry.path.lastIndexOf(0x2f);
    while (end > 0) {
      const parent = entry.path.subarray(0, end);
      const key = parent.toString('latin1');
      const existing = byPath.get(key);
      if (existing === undefined) {
        byPath.set(key, { path: Buffer.from(parent), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });
      } else if (existing.type !== 'directory') {
        throw new RedoError('ERR_LAYER_CONFLICT', `redo: "${pathText(entry.path)}": its parent is a ${existing.type}, not a directory`, {
          details: [`parent: "${pathText(parent)}"`],
        });
      } else {
        break;
      }
      end = parent.lastIndexOf(0x2f);
    }
  }
  const sorted = [...byPath.values()].sort((a, b) => comparePaths(a.path, b.path));
  for (const [index, entry] of sorted.entries()) {
    if (entry.type !== 'hardlink') continue;
    const target = entry.linkTarget === undefined ? undefined : byPath.get(entry.linkTarget.toString('latin1'));
    if (target === undefined || target.type !== 'file' || comparePaths(target.path, entry.path) >= 0) {
      throw new RedoError('ERR_LAYER_PATH', `redo: "${pathText(entry.path)}": hardlink target is not an earlier file in ${label}`, {
        details: [`target: "${entry.linkTarget === undefined ? '' : pathText(entry.linkTarget)}"`],
      });
    }
    // Both names share one inode: extractors apply the link's mode and owner to it,
    // so the link carries its target's, whatever metadata was declared for the name.
    sorted[index] = { ...entry, mode: target.mode, uid: target.uid, gid: target.gid };
  }
  return sorted;
}

/**
 * Writes a deterministic tar of `entries` to `output` (a file path, created or
 * truncated, or a Writable, which is ended). The bytes are those tar-stream's pack()
 * makes (ustarHeaderBlock for a plain header, tar-stream for a pax one) from headers
 * whose every field we set: members sorted by path bytes, every
 * parent directory explicit, every mtime `options.mtimeSeconds` (default:
 * SOURCE_DATE_EPOCH or 0; negative or fractional values are floored to 0 / whole
 * seconds), uid/gid as given, uname/gname empty, modes as given (permission bits).
 * Pax members appear only where tar-stream's ustar block cannot hold a field (see
 * above); they are named `PaxHeader` and take the member's own mode, ids and mtime.
 * The bytes depend only on the entries and the mtime. Content is streamed (files up
 * to 1 MiB in one synchronous read, larger ones in 1 MiB chunks), never held whole.
 * Returns the tar's sha256 (diffID) and size. Throws ERR_LAYER_READ naming the member
 * when a file cannot be read or changed size, ERR_LAYER_UNREPRESENTABLE for a name or
 * link target that is not UTF-8 (before anything is written), ERR_LAYER_CONFLICT /
 * ERR_LAYER_PATH from normaliseEntries.
 */
export async function writeTar(
  entries: Iterable<TarEntry>,
  output: string | Writable,
  options: WriteTarOptions = {},
): Promise<TarResult> {
  const label = options.label ?? (typeof output === 'string' ? `"${output}"` : 'the archive');
  const mtimeSeconds = Math.max(0, Math.floor(options.mtimeSeconds ?? mtimeFromEnvironment()));
  const list = Array.isArray(entries) ? (entries as TarEntry[]) : [...entries];
  // A big layer going to a file is hashed and written by a worker thread while this one
  // reads the next files (the bytes are the same; only who hashes them differs). The
  // worker starts now, so its start-up overlaps the checks below (normalising does not
  // change a file's size).
  let contentBytes = 0;
  for (const entry of list) if (entry.type === 'file') contentBytes += entry.sizeBytes;
  const offThread = typeof output === 'string' && contentBytes >= OFF_THREAD_BYTES ? new OffThreadSink() : null;
  let fd: number | null = null;
  let result: TarResult;
  try {
    const sorted = normaliseEntries(list, label);
    // Everything tar-stream could not write is refused before the output is touched.
    for (const entry of sorted) checkRepresentable(entry, label);
    const stream = typeof output === 'string' ? null : output;
    fd = typeof output === 'string' ? openSync(output, 'w', 0o644) : null;
    result = await writeMembers(sorted, fd, stream, offThread, mtimeSeconds, label);
  } finally {
    offThread?.abort();
    if (fd !== null) closeSync(fd);
  }
  if (typeof output !== 'string') {
    output.end();
    await once(output, 'finish');
  }
  return result;
}

/** writeTar's body once the output is open: every member, the end blocks, the digest. */
async function writeMembers(sorted: TarEntry[], fd: number | null, stream: Writable | null, offThread: OffThreadSink | null, mtimeSeconds: number, label: string): Promise<TarResult> {
  const sink = new TarSink(fd, stream);
  const isRegularFile = fd !== null && fstatSync(fd).isFile();
  offThread?.attach(fd, isRegularFile);
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES + 1);
  // One member at a time, each complete in the sink before the next: at most one
  // chunk of one file is in memory.
  const write = offThread !== null ? (bytes: Buffer): void => offThread.write(bytes) : (bytes: Buffer): void => void sink.write(bytes);
  // A file takes every write at once; a stream may ask to wait for 'drain'.
  const put: PutBytes = stream === null ? write : async (bytes) => {
    if (!sink.write(bytes)) await once(stream, 'drain');
  };
  for (const entry of sorted) {
    if (stream === null && writeMemberSync(write, buffer, entry, mtimeSeconds, label, offThread)) continue;
    await writeMember(put, buffer, entry, mtimeSeconds, label);
  }
  // End of archive: two zero blocks (POSIX), no record padding, as tar-stream ends it.
  await put(ZERO_BLOCKS);
  if (offThread !== null) {
    const finished = offThread.finish();
    // Whole slots of zeros were left as holes: the file's length is set here.
    if (isRegularFile) ftruncateSync(fd!, finished.sizeBytes);
    return { diffId: finished.digest, sizeBytes: finished.sizeBytes };
  }
  sink.finish();
  return { diffId: finishDigest(sink.hash), sizeBytes: sink.sizeBytes };
}

/**
 * The header block(s) writeTar writes for one normalised `entry` at `mtimeSeconds`,
 * made by the same header mapping and tar-stream pack: a pax member (header, records,
 * padding) when one is needed, then the ustar block; no content. For golden tests
 * and diagnostics. Throws ERR_LAYER_UNREPRESENTABLE as writeTar does.
 */
export async function packedHeaderBlocks(entry: TarEntry, mtimeSeconds: number): Promise<Buffer> {
  checkRepresentable(entry, 'the archive');
  const header = packHeaderOf(entry, mtimeSeconds);
  const pack = (await loadTarStream()).pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => void chunks.push(chunk as Buffer));
  pack.on('error', () => undefined);
  addMember(pack, header);
  // tar-stream opens the member and pushes its header on later ticks; a macrotask
  // later the header is out and only the body (which we never give) is awaited.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  pack.destroy();
  const bytes = Buffer.concat(chunks);
  if (bytes.length === 0 || bytes.length % BLOCK_BYTES !== 0) {
    throw new Error(`tar-stream produced ${bytes.length} header bytes for "${escapedText(entry.path)}"`);
  }
  return bytes;
}

/** A member read from an archive: a normalised entry plus what the header stored. */
export interface ReadTarEntry extends TarEntry {
  /** The member name exactly as stored (before normalisation), for callers that audit paths. */
  rawPath: Buffer;
  mtimeSeconds: number;
  /** Content bytes; valid only until the iteration moves on (unread content is skipped). */
  body: Readable;
}

/** Options for readTar. */
export interface ReadTarOptions {
  /** Name used in errors; default the path, or "the archive". */
  label?: string;
}

function isRootName(raw: Buffer): boolean {
  const text = raw.toString('latin1');
  return text === '.' || text === './' || text === '/' || text === '';
}

async function sniffGzip(input: Readable): Promise<Readable> {
  // Peek at the first two bytes: 1f 8b is gzip, anything else is taken as a plain tar.
  const iterator = input[Symbol.asyncIterator]();
  const first = await iterator.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Buffer);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value as Buffer;
    }
  }
  const replayed = Readable.from(replay(), { objectMode: false });
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return replayed.pipe(createGunzip());
  return replayed;
}

/**
 * Reads a tar (or gzip-compressed tar, detected by its magic bytes) from a file path
 * or a stream, yielding one normalised entry per member in archive order. pax and
 * GNU long names are applied; the root member (`./`) is skipped; member paths are
 * normalised with toMemberPath (leading `./` and `/` removed) and a `..` component
 * throws ERR_LAYER_PATH naming the archive and member. `body` must be consumed before
 * the next iteration or it is skipped. Throws ERR_TAR_MALFORMED on corrupt input.
 * Known limit: a pax path that is not UTF-8 is decoded lossily by the parser.
 */
export async function* readTar(input: string | Readable, options: ReadTarOptions = {}): AsyncGenerator<ReadTarEntry> {
  const label = options.label ?? (typeof input === 'string' ? input : 'the archive');
  const source = await sniffGzip(typeof input === 'string' ? createReadStream(input) : input);
  // latin1 keeps every name byte as one char, so raw bytes round-trip through strings.
  const extract = (await loadTarStream()).extract({ filenameEncoding: 'latin1' } as never);
  source.on('error', (error) => extract.destroy(error));
  source.pipe(extract as unknown as Writable);
  try {
    for await (const member of extract) {
      const header = member.header;
      const pax = (header.pax ?? null) as Record<string, string> | null;
      const rawPath = pax?.['path'] !== undefined ? Buffer.from(pax['path'], 'utf8') : Buffer.from(header.name, 'latin1');
      const rawLink =
        pax?.['linkpath'] !== undefined ? Buffer.from(pax['linkpath'], 'utf8') : Buffer.from(header.linkname ?? '', 'latin1');
      const body = Readable.from(member as AsyncIterable<Buffer>, { objectMode: false });
      if (isRootName(rawPath)) {
        await drain(body);
        continue;
      }
      let path: Buffer;
      try {
        path = toMemberPath(rawPath);
      } catch (cause) {
        throw new RedoError('ERR_LAYER_PATH', `redo: "${label}": member "${pathText(rawPath)}" escapes the archive root`, {
          details: ['wanted: a relative path without ".."', `found: "${pathText(rawPath)}"`],
          cause,
        });
      }
      const type = header.type === 'link' ? 'hardlink' : header.type === 'contiguous-file' ? 'file' : header.type;
      const entry: ReadTarEntry = {
        path,
        rawPath,
        type,
        mode: header.mode & 0o7777,
        uid: header.uid,
        gid: header.gid,
        sizeBytes: type === 'file' ? header.size : 0,
        mtimeSeconds: Math.floor(header.mtime.getTime() / 1000),
        body,
      };
      if (type === 'symlink') entry.linkTarget = rawLink;
      if (type === 'hardlink') entry.linkTarget = toMemberPath(rawLink);
      if (type === 'character-device' || type === 'block-device') {
        entry.deviceMajor = header.devmajor;
        entry.deviceMinor = header.devminor;
      }
      yield entry;
      await drain(body);
    }
  } catch (cause) {
    if (cause instanceof RedoError) throw cause;
    throw new RedoError('ERR_TAR_MALFORMED', `redo: "${label}": not a readable tar archive`, {
      details: [String((cause as Error).message ?? cause)],
      cause,
    });
  } finally {
    source.destroy();
  }
}

async function drain(body: Readable): Promise<void> {
  if (body.readableEnded || body.destroyed) return;
  body.resume();
  await once(body, 'end').catch(() => undefined);
}

/** One member of an uncompressed tar file located by byte offset (see indexTar). */
export interface IndexedMember {
  header: TarHeaderFields;
  /** Offset of the first header block of this member (its pax header, if any). */
  headerOffsetBytes: number;
  /** Offset of the member's content in the archive file. */
  dataOffsetBytes: number;
}

/**
 * Lists the members of an uncompressed tar file by reading only its headers
 * (content is skipped by offset, so this is fast on large layers). Applies pax
 * (`x`, and `g` globals) and GNU long-name (`L`, `K`) records. Throws
 * ERR_TAR_MALFORMED on a bad checksum or truncated archive.
 */
export function indexTar(path: string): IndexedMember[] {
  const members: IndexedMember[] = [];
  const fd = openSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const block = Buffer.alloc(BLOCK_BYTES);
    let at = 0;
    let globals: Record<string, Buffer> = {};
    let pending: Record<string, Buffer> | null = null;
    let longName: Buffer | null = null;
    let longLink: Buffer | null = null;
    let memberStart = 0;
    const readExact = (offset: number, size: number): Buffer => {
      const out = Buffer.alloc(size);
      if (readSync(fd, out, 0, size, offset) !== size) {
        throw new RedoError('ERR_TAR_MALFORMED', `redo: "${path}": truncated tar archive`, {
          details: [`wanted ${size} bytes at offset ${offset}, file is ${fileBytes} bytes`],
        });
      }
      return out;
    };
    while (at + BLOCK_BYTES <= fileBytes) {
      if (readSync(fd, block, 0, BLOCK_BYTES, at) !== BLOCK_BYTES) break;
      if (isZeroBlock(block)) break;
      if (pending === null && longName === null && longLink === null) memberStart = at;
      const raw = decodeHeader(block, path);
      const dataOffset = at + BLOCK_BYTES;
      const sizeBytes = raw.typeflag === '1' || raw.typeflag === '2' || raw.typeflag === '5' ? 0 : raw.sizeBytes;
      const next = dataOffset + sizeBytes + paddingBytes(sizeBytes);
      switch (raw.typeflag) {
        case 'x':
          pending = { ...(pending ?? {}), ...decodePaxRecords(readExact(dataOffset, raw.sizeBytes), path) };
          break;
        case 'g':
          globals = { ...globals, ...decodePaxRecords(readExact(dataOffset, raw.sizeBytes), path) };
          break;
        case 'L':
          longName = cut(readExact(dataOffset, raw.sizeBytes));
          break;
        case 'K':
          longLink = cut(readExact(dataOffset, raw.sizeBytes));
          break;
        default: {
          let header = raw;
          if (longName !== null) header = { ...header, path: longName };
          if (longLink !== null) header = { ...header, linkTarget: longLink };
          header = applyPax(header, { ...globals, ...(pending ?? {}) });
          const contentBytes = header.type === 'file' || header.type === 'other' ? header.sizeBytes : 0;
          members.push({ header, headerOffsetBytes: memberStart, dataOffsetBytes: dataOffset });
          pending = null;
          longName = null;
          longLink = null;
          at = dataOffset + contentBytes + paddingBytes(contentBytes);
          if (at > fileBytes) {
            throw new RedoError('ERR_TAR_MALFORMED', `redo: "${path}": truncated tar archive`, {
              details: [`member "${pathText(header.path)}" needs ${contentBytes} bytes past offset ${dataOffset}`],
            });
          }
          continue;
        }
      }
      at = next;
    }
  } finally {
    closeSync(fd);
  }
  return members;
}

function cut(bytes: Buffer): Buffer {
  const end = bytes.indexOf(0);
  return end === -1 ? bytes : bytes.subarray(0, end);
}

/**
 * The bytes of a file entry, at most `limitBytes` of them: its buffer, or a read of its
 * file at its offset (the content entriesOfTar gives). Empty for an entry without
 * content; undefined for streamed content, which cannot be read twice.
 */
export function readEntryBytes(entry: TarEntry, limitBytes = entry.sizeBytes): Buffer | undefined {
  const content = entry.content;
  const size = Math.min(limitBytes, entry.sizeBytes);
  if (content === undefined) return Buffer.alloc(0);
  if (content.kind === 'buffer') return content.bytes.subarray(0, size);
  if (content.kind !== 'path') return undefined;
  if (size === 0) return Buffer.alloc(0);
  const fd = openSync(content.path, 'r');
  try {
    const bytes = Buffer.alloc(size);
    readSync(fd, bytes, 0, size, content.offsetBytes ?? 0);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * The members of an uncompressed tar file as entries whose content points back into
 * that file by offset, ready for writeTar (merging, diffing). The root member is
 * skipped and paths are normalised; `..` throws ERR_LAYER_PATH.
 */
export function entriesOfTar(path: string): TarEntry[] {
  const entries: TarEntry[] = [];
  for (const member of indexTar(path)) {
    const h = member.header;
    if (isRootName(h.path)) continue;
    if (h.type === 'other') continue;
    let memberPath: Buffer;
    try {
      memberPath = toMemberPath(h.path);
    } catch (cause) {
      throw new RedoError('ERR_LAYER_PATH', `redo: "${path}": member "${pathText(h.path)}" escapes the archive root`, { cause });
    }
    const entry: TarEntry = { path: memberPath, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, sizeBytes: 0 };
    if (h.type === 'file') {
      entry.sizeBytes = h.sizeBytes;
      entry.content = { kind: 'path', path, offsetBytes: member.dataOffsetBytes };
    }
    if (h.type === 'symlink') entry.linkTarget = h.linkTarget;
    if (h.type === 'hardlink') entry.linkTarget = toMemberPath(h.linkTarget);
    if (h.type === 'character-device' || h.type === 'block-device') {
      entry.deviceMajor = h.deviceMajor;
      entry.deviceMinor = h.deviceMinor;
    }
    entries.push(entry);
  }
  return entries;
}

/**
 * Entries of a tar as JSON-able rows (a fact kept beside a layer's blob in the image
 * store): `[latin1 path, type, mode, uid, gid, sizeBytes, latin1 link target or null,
 * content offset or null, device major or null, device minor or null]`. Pure.
 */
export type EntryFact = [string, TarEntry['type'], number, number, number, number, string | null, number | null, number | null, number | null];

/** The rows of `entries` as entriesOfTar gives them (content in a file, by offset). Pure. */
export function entriesToFacts(entries: readonly TarEntry[]): EntryFact[] {
  return entries.map((e) => [
    e.path.toString('latin1'),
    e.type,
    e.mode,
    e.uid,
    e.gid,
    e.sizeBytes,
    e.linkTarget === undefined ? null : e.linkTarget.toString('latin1'),
    e.content?.kind === 'path' ? e.content.offsetBytes ?? 0 : null,
    e.deviceMajor ?? null,
    e.deviceMinor ?? null,
  ]);
}

/** Entries from rows made by entriesToFacts, their content read from the tar at `path` (the same bytes). Pure. */
export function entriesFromFacts(rows: readonly EntryFact[], path: string): TarEntry[] {
  return rows.map(([name, type, mode, uid, gid, sizeBytes, link, offset, major, minor]) => ({
    path: Buffer.from(name, 'latin1'),
    type,
    mode,
    uid,
    gid,
    sizeBytes,
    ...(link === null ? {} : { linkTarget: Buffer.from(link, 'latin1') }),
    ...(offset === null ? {} : { content: { kind: 'path' as const, path, offsetBytes: offset } }),
    ...(major === null ? {} : { deviceMajor: major }),
    ...(minor === null ? {} : { deviceMinor: minor }),
  }));
}
