/** Deterministic tar writing and tar reading (the only module that imports tar-stream). */

import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { Readable, type Writable } from 'node:stream';
import { once } from 'node:events';
import { createGunzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { RedoError } from '../errors.js';
import { finishDigest, type Sha256Digest } from './digest.js';
import {
  BLOCK_BYTES,
  applyPax,
  comparePaths,
  decodeHeader,
  decodePaxRecords,
  encodeHeader,
  isZeroBlock,
  paddingBytes,
  pathText,
  toMemberPath,
  type TarEntry,
  type TarHeaderFields,
} from './tar-header.js';

export type { TarEntry, TarEntryType, TarContent, TarHeaderFields } from './tar-header.js';
export { toMemberPath, comparePaths, pathText } from './tar-header.js';

/** Largest mtime a ustar header holds without pax (8^11 - 1 seconds). */
const MAX_USTAR_MTIME = 0o77777777777;

/**
 * The mtime every member gets: `SOURCE_DATE_EPOCH` from `env` when set (clamped to
 * 0..8^11-1 so it always fits the ustar field), else 0. Throws ERR_SOURCE_DATE_EPOCH
 * when the variable is set to anything but a non-negative integer.
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

const STAGING_BYTES = 1 << 20;
const SMALL_FILE_BYTES = (1 << 20) + 1;

/**
 * Buffers output in 1 MiB blocks and hashes while streaming. Writing to a file uses
 * synchronous writes (a layer build is the only thing this process is doing and it
 * avoids a thread-pool round trip per block); writing to a stream respects
 * backpressure.
 */
class TarSink {
  private staging = Buffer.allocUnsafe(STAGING_BYTES);
  private used = 0;
  readonly hash: Hash = createHash('sha256');
  sizeBytes = 0;

  constructor(
    private readonly fd: number | null,
    private readonly stream: Writable | null,
  ) {}

  /** Copies `chunk` into the staging block; the caller may reuse `chunk` afterwards. */
  async write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, STAGING_BYTES - this.used);
      chunk.copy(this.staging, this.used, at, at + n);
      this.used += n;
      at += n;
      if (this.used === STAGING_BYTES) await this.flush();
    }
  }

  async zeros(count: number): Promise<void> {
    if (count > 0) await this.write(Buffer.alloc(count));
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const block = this.staging.subarray(0, this.used);
    this.hash.update(block);
    this.sizeBytes += block.length;
    if (this.fd !== null) {
      let at = 0;
      while (at < block.length) at += writeSync(this.fd, block, at, block.length - at);
      this.used = 0;
      return;
    }
    // A stream keeps the buffer it is given, so hand over this block and start a new one.
    this.staging = Buffer.allocUnsafe(STAGING_BYTES);
    this.used = 0;
    if (!this.stream!.write(block)) await once(this.stream!, 'drain');
  }
}

function readError(entry: TarEntry, label: string, detail: string, cause?: unknown): RedoError {
  return new RedoError('ERR_LAYER_READ', `redo: "${pathText(entry.path)}": could not read the file going into ${label}`, {
    details: [detail],
    cause,
  });
}

async function writeContent(sink: TarSink, entry: TarEntry, label: string, chunk: Buffer): Promise<void> {
  const content = entry.content;
  if (content === undefined) {
    if (entry.sizeBytes !== 0) throw readError(entry, label, `no content given for ${entry.sizeBytes} bytes`);
    return;
  }
  let written = 0;
  switch (content.kind) {
    case 'buffer': {
      if (content.bytes.length !== entry.sizeBytes) {
        throw readError(entry, label, `size: wanted ${entry.sizeBytes}, found ${content.bytes.length}`);
      }
      await sink.write(content.bytes);
      written = content.bytes.length;
      break;
    }
    case 'path': {
      let fd: number;
      try {
        fd = openSync(content.path, 'r');
      } catch (cause) {
        throw readError(entry, label, `open: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, cause);
      }
      try {
        // Small files: one synchronous read. Large files: 1 MiB chunks. Either way
        // exactly sizeBytes are copied and a file that grew or shrank is refused.
        // A whole file (no offset) is read one byte past its size, so a file that grew
        // since it was listed shows up without an extra fstat per file.
        const isWholeFile = content.offsetBytes === undefined;
        let position = content.offsetBytes ?? 0;
        for (;;) {
          const remaining = entry.sizeBytes - written;
          const want = Math.min(chunk.length, remaining + (isWholeFile ? 1 : 0));
          if (want === 0) break;
          let n: number;
          try {
            n = readSync(fd, chunk, 0, want, position);
          } catch (cause) {
            throw readError(entry, label, `read: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, cause);
          }
          if (n === 0) break;
          if (n > remaining) {
            written += n;
            break;
          }
          await sink.write(chunk.subarray(0, n));
          written += n;
          position += n;
        }
      } finally {
        closeSync(fd);
      }
      break;
    }
    case 'stream': {
      for await (const piece of content.open()) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
        written += bytes.length;
        if (written > entry.sizeBytes) break;
        await sink.write(bytes);
      }
      break;
    }
    default: {
      const impossible: never = content;
      throw new Error(`unknown content kind ${JSON.stringify(impossible)}`);
    }
  }
  if (written !== entry.sizeBytes) {
    throw readError(entry, label, `size: wanted ${entry.sizeBytes} bytes, found ${written} (the file changed while it was read?)`);
  }
}

/**
 * Returns `entries` sorted by path bytes with every missing parent directory added
 * (mode 0755, uid 0, gid 0); a hardlink takes its target's mode, uid and gid (they
 * share an inode). Throws ERR_LAYER_CONFLICT when a path is given twice or a parent
 * is not a directory, ERR_LAYER_PATH when a hardlink points at a path that is not an
 * earlier file.
 */
export function normaliseEntries(entries: Iterable<TarEntry>, label = 'the archive'): TarEntry[] {
  const byPath = new Map<string, TarEntry>();
  for (const entry of entries) {
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
 * truncated, or a Writable, which is ended). Members are sorted by path bytes, every
 * parent directory is explicit, every mtime is `options.mtimeSeconds` (default:
 * SOURCE_DATE_EPOCH or 0), uname/gname are empty, and pax headers appear only for
 * fields ustar cannot hold. The bytes depend only on the entries and the mtime.
 * Content is streamed; no file is held whole in memory. Returns the tar's sha256
 * (diffID) and size. Throws ERR_LAYER_READ naming the member when a file cannot be
 * read or changed size, ERR_LAYER_CONFLICT / ERR_LAYER_PATH from normaliseEntries.
 */
export async function writeTar(
  entries: Iterable<TarEntry>,
  output: string | Writable,
  options: WriteTarOptions = {},
): Promise<TarResult> {
  const label = options.label ?? (typeof output === 'string' ? `"${output}"` : 'the archive');
  const mtimeSeconds = options.mtimeSeconds ?? mtimeFromEnvironment();
  const sorted = normaliseEntries(entries, label);
  const fd = typeof output === 'string' ? openSync(output, 'w', 0o644) : null;
  const sink = new TarSink(fd, typeof output === 'string' ? null : output);
  const chunk = Buffer.allocUnsafe(SMALL_FILE_BYTES);
  try {
    for (const entry of sorted) {
      const normalised: TarEntry = entry.type === 'file' ? entry : { ...entry, sizeBytes: 0 };
      await sink.write(encodeHeader(normalised, mtimeSeconds));
      if (entry.type === 'file') {
        await writeContent(sink, entry, label, chunk);
        await sink.zeros(paddingBytes(entry.sizeBytes));
      }
    }
    // End of archive: two zero blocks (POSIX), no further record padding.
    await sink.zeros(2 * BLOCK_BYTES);
    await sink.flush();
  } finally {
    if (fd !== null) closeSync(fd);
  }
  if (typeof output !== 'string') {
    output.end();
    await once(output, 'finish');
  }
  return { diffId: finishDigest(sink.hash), sizeBytes: sink.sizeBytes };
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
  const extract = tarStream.extract({ filenameEncoding: 'latin1' } as never);
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
