/** An archive of members in a given order (an image view: unchanged content first) that reuses the unchanged prefix of its previous bytes in place, hashed with a resumable sha256. */

import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createSHA256 } from 'hash-wasm';
import { isRedoError, RedoError } from '../errors.js';
import { toSha256Digest } from './digest.js';
import { fileChunks, packedHeaderBlocks, type TarResult } from './tar.js';
import { BLOCK_BYTES, paddingBytes, type TarEntry } from './tar-header.js';

/** Bumped when the states file's shape changes: older ones are not read (the archive is then written in full). */
const statesVersion = 1;

/** Bytes read and written at a time. */
const CHUNK_BYTES = 1 << 20;

/** End of archive: two zero blocks, no record padding (as writeTar ends a tar). */
const END_BYTES = Buffer.alloc(2 * BLOCK_BYTES);

/**
 * One member of an ordered archive: a tar entry (a file whose content is a buffer or a
 * stored file, or a directory) and the identity of its content (`sha256:<hex>` of its
 * bytes, which the caller knows for a stored blob; `directory` for a directory).
 */
export interface OrderedMember {
  entry: TarEntry;
  contentDigest: string;
}

/** The previous archive a rule took back (RuleContext.takePreviousOutput): at the output path, with the sha256 the engine recorded. */
export interface PreviousArchive {
  path: string;
  sha256Hex: string;
  sizeBytes: number;
}

/** What writeOrderedArchive did: the archive's sha256 and size, and how many leading bytes it kept from the previous archive. */
export interface OrderedArchiveResult extends TarResult {
  reusedBytes: number;
}

/** The states file of an archive: each member as written and the sha256 state after it (hash-wasm's save(), base64), or null when it was not saved. */
interface ArchiveStates {
  version: number;
  members: Array<{ name: string; contentDigest: string; endBytes: number; state: string | null }>;
}

/**
 * Writes a tar of `members`, in the order given, to `outPath` (created or truncated):
 * each member's header blocks exactly as writeTar writes them (packedHeaderBlocks, every
 * mtime `mtimeSeconds`), its content, zero padding to a block, then two zero blocks; no
 * parent directory is added (give them). The bytes depend only on the members, their
 * order and the mtime: the same as writeTar's for members given in writeTar's order.
 *
 * With `previous` (the target's previous output, already at `outPath`; one elsewhere is
 * ignored, since its bytes are kept in place, never copied), the leading
 * members it holds unchanged are kept in place, not written again: a member is kept when
 * the states file of the previous archive (kept in `statesDir` under its sha256, so found
 * only for exactly those bytes) lists it at the same place with the same name and
 * content digest, and its header blocks, read from the file, are the ones this write
 * makes. The file is cut after the last kept member and the rest is written, hashed on
 * from the sha256 state after the kept prefix (hash-wasm, whose state can be saved and
 * loaded), saved by the write that made the previous archive; when that write saved
 * none (a full write: below), the kept prefix is read once, not written, to learn it.
 * Without a states file, or with nothing kept, the archive is written in full, hashed
 * with Node's sha256 (several times faster than hash-wasm), saving no states. Either way
 * the states file of the new archive is saved (and the previous one removed), so the
 * next write finds it. Returns the archive's sha256 and size, hashed as written, and the
 * bytes kept. Throws ERR_LAYER_READ naming the member when a stored file cannot be read
 * or is not its size.
 */
export async function writeOrderedArchive(
  members: readonly OrderedMember[],
  outPath: string,
  options: { mtimeSeconds: number; label: string; statesDir: string; previous?: PreviousArchive },
): Promise<OrderedArchiveResult> {
  const headers: Buffer[] = [];
  for (const member of members) headers.push(await packedHeaderBlocks(member.entry, options.mtimeSeconds));
  // The previous bytes must be the file being written: kept in place, never copied.
  const previous = options.previous !== undefined && resolve(options.previous.path) === resolve(outPath) ? options.previous : undefined;
  const kept = previous === undefined ? undefined : keptPrefix(members, headers, previous, options.statesDir);
  const fd = openSync(outPath, kept === undefined ? 'w' : 'r+', 0o644);
  const states: ArchiveStates = { version: statesVersion, members: [] };
  // A full write hashes with Node's sha256 (several times faster) and saves no states: the
  // first rewrite reads the prefix it keeps once to learn its state. A rewrite goes on
  // from the kept prefix's state with hash-wasm and saves the state after each member.
  let hasher: { update(bytes: Buffer): unknown; save?: () => Uint8Array; digest(encoding: 'hex'): string };
  let at = 0;
  try {
    if (kept !== undefined) {
      const resumable = await createSHA256();
      resumable.init();
      if (kept.state !== null) resumable.load(Buffer.from(kept.state, 'base64'));
      else hashPrefix(resumable, fd, kept.endBytes, options.label);
      ftruncateSync(fd, kept.endBytes);
      states.members.push(...kept.members.slice(0, -1), { ...kept.members[kept.members.length - 1]!, state: Buffer.from(resumable.save()).toString('base64') });
      at = kept.endBytes;
      hasher = { update: (bytes) => resumable.update(bytes), save: () => resumable.save(), digest: () => resumable.digest('hex') };
    } else {
      const hash = createHash('sha256');
      hasher = { update: (bytes) => hash.update(bytes), digest: () => hash.digest('hex') };
    }
    const put = (bytes: Buffer): void => {
      hasher.update(bytes);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, at + done);
      at += bytes.length;
    };
    // CHUNK_BYTES + 1: fileChunks reads a probe byte past a file's end.
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES + 1);
    for (let i = states.members.length; i < members.length; i += 1) {
      const { entry, contentDigest } = members[i]!;
      put(headers[i]!);
      if (entry.type === 'file') {
        const content = entry.content;
        if (content?.kind === 'buffer') put(content.bytes);
        else if (content?.kind === 'path') copyContent(put, buffer, entry, content.path, options.label);
        else if (entry.sizeBytes !== 0) throw readError(entry, options.label, 'no content given');
        put(END_BYTES.subarray(0, paddingBytes(entry.sizeBytes)));
      }
      const state = hasher.save === undefined ? null : Buffer.from(hasher.save()).toString('base64');
      states.members.push({ name: entry.path.toString('latin1'), contentDigest, endBytes: at, state });
    }
    put(END_BYTES);
    ftruncateSync(fd, at);
  } finally {
    closeSync(fd);
  }
  const sha256Hex = hasher.digest('hex');
  saveStates(options.statesDir, sha256Hex, states);
  if (previous !== undefined && previous.sha256Hex !== sha256Hex) rmSync(statesPath(options.statesDir, previous.sha256Hex), { force: true });
  return { diffId: toSha256Digest(`sha256:${sha256Hex}`), sizeBytes: at, reusedBytes: kept?.endBytes ?? 0 };
}

/** The leading members of `previous` that the new archive has unchanged, with the hash state after them; undefined when none (or no states file). */
function keptPrefix(
  members: readonly OrderedMember[],
  headers: readonly Buffer[],
  previous: PreviousArchive,
  statesDir: string,
): { endBytes: number; state: string | null; members: ArchiveStates['members'] } | undefined {
  let states: ArchiveStates;
  try {
    states = JSON.parse(readFileSync(statesPath(statesDir, previous.sha256Hex), 'utf8')) as ArchiveStates;
  } catch {
    return undefined;
  }
  if (states.version !== statesVersion || !Array.isArray(states.members)) return undefined;
  const fd = openSync(previous.path, 'r');
  let count = 0;
  try {
    let start = 0;
    for (; count < members.length && count < states.members.length; count += 1) {
      const { entry, contentDigest } = members[count]!;
      const old = states.members[count]!;
      const header = headers[count]!;
      const end = start + header.length + (entry.type === 'file' ? entry.sizeBytes + paddingBytes(entry.sizeBytes) : 0);
      if (old.name !== entry.path.toString('latin1') || old.contentDigest !== contentDigest || old.endBytes !== end || end > previous.sizeBytes) break;
      // The header on disk is the one this write makes (name, size, mode, mtime...).
      const onDisk = Buffer.alloc(header.length);
      if (readSync(fd, onDisk, 0, header.length, start) !== header.length || !onDisk.equals(header)) break;
      start = end;
    }
  } finally {
    closeSync(fd);
  }
  if (count === 0) return undefined;
  const last = states.members[count - 1]!;
  return { endBytes: last.endBytes, state: last.state, members: states.members.slice(0, count) };
}

/** Hashes the first `endBytes` bytes of the file `fd` into `hasher` (a prefix kept without a saved state: read once). */
function hashPrefix(hasher: { update(bytes: Buffer): unknown }, fd: number, endBytes: number, label: string): void {
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let done = 0;
  while (done < endBytes) {
    const n = readSync(fd, buffer, 0, Math.min(buffer.length, endBytes - done), done);
    if (n === 0) {
      throw new RedoError('ERR_LAYER_READ', `redo: ${label}: the previous archive, taken back to be rewritten, is shorter than it was`, {
        details: [`wanted: at least ${endBytes} bytes`, `found: ${done} bytes`],
        hint: 'run the build again: the target is missing now, so it is written in full',
      });
    }
    hasher.update(buffer.subarray(0, n));
    done += n;
  }
}

function statesPath(statesDir: string, sha256Hex: string): string {
  return join(statesDir, `${sha256Hex}.json`);
}

/** Writes the states file of the archive `sha256Hex` (temporary file, then rename: never half a file). */
function saveStates(statesDir: string, sha256Hex: string, states: ArchiveStates): void {
  mkdirSync(statesDir, { recursive: true });
  const temporary = join(statesDir, `.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  try {
    const fd = openSync(temporary, 'w', 0o644);
    try {
      const bytes = Buffer.from(JSON.stringify(states));
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, statesPath(statesDir, sha256Hex));
  } catch {
    // Only the next write's speed depends on it: without it, that write is a full one.
    rmSync(temporary, { force: true });
  }
}

/**
 * Copies the `entry.sizeBytes` bytes of the file at `path` through `put` (tar.ts's
 * fileChunks: the file must be exactly that long); its ERR_LAYER_READ gets the hint of
 * an archive view, whose files are the store's blobs.
 */
function copyContent(put: (bytes: Buffer) => void, buffer: Buffer, entry: TarEntry, path: string | Buffer, label: string): void {
  try {
    for (const chunk of fileChunks(buffer, entry, path, undefined, label)) put(chunk);
  } catch (error) {
    if (!isRedoError(error, 'ERR_LAYER_READ')) throw error;
    throw new RedoError('ERR_LAYER_READ', error.headline, { details: [...error.details], hint: blobHint, cause: error.cause });
  }
}

const blobHint = 'rebuild the image with -f (redo-ts -f NAME.image.json), which stores its blobs again';

function readError(entry: TarEntry, label: string, detail: string): RedoError {
  return new RedoError('ERR_LAYER_READ', `redo: ${label}: cannot read the content of member "${entry.path.toString('utf8')}"`, {
    details: [detail],
    hint: blobHint,
  });
}

