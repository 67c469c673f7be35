/** Reading a .deb without dpkg or root: its ar container, and its data archive as a tar stream. */

import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants, createReadStream, createWriteStream, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { copyFile, link, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Transform, pipeline as pipelineStreams, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { RedoError, isRedoError } from '../errors.js';
import { entriesOfTar, indexTar, pathText, readTar, type TarEntry } from '../image/tar.js';
import { failWhenObserved, spawnDecompressor } from './decompress.js';
import { holdTemporary } from './scratch.js';
import { isProcessAlive } from '../processes.js';

/** One member of an ar archive: its name and where its bytes lie in the file. */
export interface ArMember {
  name: string;
  offsetBytes: number;
  sizeBytes: number;
}

/*
 * ar layout (as written by dpkg-deb; see deb(5) and ar(5)):
 *
 *   "!<arch>\n"                                   8-byte global magic
 *   then per member a 60-byte header, all ASCII, space padded:
 *     name[16] mtime[12] uid[6] gid[6] mode[8] size[10] "`\n"
 *   then `size` bytes of data, plus one "\n" pad byte when size is odd.
 *
 * GNU ar ends names with "/"; dpkg-deb writes names without it. A .deb holds
 * debian-binary, control.tar.{gz,xz,zst} and data.tar.{gz,xz,zst,bz2} or data.tar.
 */
const arMagic = '!<arch>\n';
const headerBytes = 60;

/**
 * Lists the members of the ar archive at `path`. `label` names the package in errors.
 * Throws ERR_DEB_FORMAT when the file is not an ar archive or a header is damaged.
 */
export async function listArMembers(path: string, label: string): Promise<ArMember[]> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const magic = Buffer.alloc(arMagic.length);
    await handle.read(magic, 0, magic.length, 0);
    if (magic.toString('latin1') !== arMagic) {
      throw debFormatError(label, 'the file does not start with the ar magic "!<arch>"');
    }
    const members: ArMember[] = [];
    let offset = arMagic.length;
    const header = Buffer.alloc(headerBytes);
    while (offset < size) {
      const { bytesRead } = await handle.read(header, 0, headerBytes, offset);
      if (bytesRead < headerBytes || header.toString('latin1', 58, 60) !== '`\n') {
        throw debFormatError(label, `damaged ar member header at byte ${offset}`);
      }
      const name = header.toString('latin1', 0, 16).trimEnd().replace(/\/$/, '');
      const sizeText = header.toString('latin1', 48, 58).trim();
      if (!/^[0-9]+$/.test(sizeText)) throw debFormatError(label, `ar member "${name}" has size "${sizeText}"`);
      const sizeBytes = Number(sizeText);
      const dataOffset = offset + headerBytes;
      if (dataOffset + sizeBytes > size) throw debFormatError(label, `ar member "${name}" runs past the end of the file`);
      members.push({ name, offsetBytes: dataOffset, sizeBytes });
      offset = dataOffset + sizeBytes + (sizeBytes % 2);
    }
    return members;
  } finally {
    await handle.close();
  }
}

function debFormatError(label: string, problem: string): RedoError {
  return new RedoError('ERR_DEB_FORMAT', `redo: "${label}": not a valid .deb package`, {
    details: [`problem: ${problem}`],
    hint: 'check the source pin: a .deb must be an ar archive holding data.tar.*',
  });
}

/** The decompressor for each data archive suffix: `null` is plain tar. */
const decompressors: Record<string, readonly string[] | 'gzip' | null> = {
  'data.tar': null,
  'data.tar.gz': 'gzip',
  'data.tar.xz': ['xz', '--decompress', '--stdout'],
  'data.tar.zst': ['zstd', '--decompress', '--stdout', '--quiet'],
  'data.tar.bz2': ['bzip2', '--decompress', '--stdout'],
};

/**
 * Opens the data archive of the .deb at `path` as a stream of uncompressed tar bytes.
 * gzip is undone with node:zlib; xz, zstd and bzip2 with the system's tools through a
 * child process. A decompressor failure (non-zero exit, missing tool) surfaces as an
 * ERR_DEB_FORMAT error on the returned stream. Destroying the stream stops the child.
 * Throws ERR_DEB_FORMAT when the package has no data member.
 */
export async function openDebData(path: string, label: string): Promise<Readable> {
  return openDebArchive(path, label, 'data.tar');
}

/**
 * The `control` file of the .deb at `path` (dpkg's control fields, deb-control(5)), as
 * text, read from its control.tar.* member the way openDebData reads the data member.
 * Throws ERR_DEB_FORMAT when the package has no control member or no `control` file.
 */
export async function readDebControl(path: string, label: string): Promise<string> {
  const archive = await openDebArchive(path, label, 'control.tar');
  for await (const entry of readTar(archive, { label: `${label} control.tar` })) {
    if (entry.type !== 'file' || entry.path.toString('latin1') !== 'control') continue;
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk as Buffer);
    archive.destroy();
    return Buffer.concat(chunks).toString('utf8');
  }
  throw debFormatError(label, 'the control archive holds no "control" file');
}

/** Hashes of a whole .deb taken while one member of it is read (openDebArchive's `whole`), by algorithm (`sha256`). */
interface WholeFileHash {
  hashes: Map<string, Hash>;
  /** Set when the read reached the end of the file: only then are `hashes` the file's. */
  isComplete: boolean;
}

/**
 * Reads the whole file at `path` in one pass, feeding every byte to `whole.hashes`, and
 * passes on only the bytes from `start` to `end` (inclusive): the member, hashed in the
 * same pass as the rest of the file.
 */
function readSliceHashingAll(path: string, start: number, end: number, whole: WholeFileHash): Readable {
  let position = 0;
  const slice = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      for (const hash of whole.hashes.values()) hash.update(chunk);
      const from = Math.max(start - position, 0);
      const to = Math.min(end + 1 - position, chunk.length);
      position += chunk.length;
      if (to > from) this.push(chunk.subarray(from, to));
      done();
    },
    flush(done) {
      whole.isComplete = true;
      done();
    },
  });
  return pipelineStreams(createReadStream(path, { highWaterMark: 1024 * 1024 }), slice, () => undefined);
}

async function openDebArchive(path: string, label: string, base: 'data.tar' | 'control.tar', whole?: WholeFileHash): Promise<Readable> {
  const members = await listArMembers(path, label);
  const data = members.find((member) => (member.name === base || member.name.startsWith(`${base}.`)) && Object.hasOwn(decompressors, member.name.replace(base, 'data.tar')));
  if (data === undefined) {
    throw debFormatError(label, `no ${base} member (members: ${members.map((m) => m.name).join(', ') || 'none'})`);
  }
  const raw = () => whole !== undefined ? readSliceHashingAll(path, data.offsetBytes, data.offsetBytes + data.sizeBytes - 1, whole) : createReadStream(path, {
    start: data.offsetBytes,
    end: data.offsetBytes + data.sizeBytes - 1,
  });
  const method = decompressors[data.name.replace(base, 'data.tar')]!;
  if (data.sizeBytes === 0) throw debFormatError(label, `${data.name} is empty`);
  if (method === null) return raw();
  if (method === 'gzip') {
    const output = new PassThrough();
    const failOutput = failWhenObserved(output);
    pipeline(raw(), createGunzip(), output).catch((cause: unknown) => {
      failOutput(debFormatError(label, `${data.name} does not decompress: ${(cause as Error).message}`));
    });
    return output;
  }
  return spawnDecompressor(method, raw(), (problem) => debFormatError(label, `${data.name}: ${problem}`));
}

/**
 * A check of a whole .deb made in the pass that unpacks its data archive (readDebEntries):
 * `integrity` is the pin (an SRI string); on a mismatch the unpacked archive is removed
 * and the error `onMismatch` gives for the hash found is thrown (it drops a cache entry).
 */
export interface DebCheck {
  integrity: string;
  onMismatch: (found: string) => Promise<Error>;
}

/**
 * Data archives decoded by this process, by the sha256 of their whole .deb
 * (`sha256-BASE64`): an uncompressed tar in a folder of the OS temporary folder that
 * the process removes when it exits (one a killed process left, the next one removes). Two readers of the same package in one build (a
 * build environment's locked busybox-static and a spec's `deb:` source of the same
 * pin) decompress it once; the .deb's own hash decides, never its name or path.
 */
const decodedData = new Map<string, { tarPath: string; debBytes: number; isReady: boolean }>();
let decodedDataDir: string | undefined;
/** Decoded archives larger than this are not kept (the temporary folder is not a second package cache). */
const decodedDataKeptBytes = 256 * 1024 * 1024;
let decodedDataBytes = 0;
/** The number of the next kept archive's file name. */
let decodedDataNext = 0;

/**
 * Makes `TMP/redo-ts-deb-data-<pid>-<random>/` for decodedData, after removing those of
 * processes that no longer run (a build killed with SIGKILL cannot remove its own).
 */
function makeDecodedDataDir(): string {
  const prefix = 'redo-ts-deb-data-';
  try {
    for (const name of readdirSync(tmpdir())) {
      if (!name.startsWith(prefix)) continue;
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isProcessAlive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  } catch {
    // Unreadable, or another process removed the same folder at the same time: not ours to fix.
  }
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
}

/** The `ALGORITHM-BASE64` of each hash of `whole`. */
function digestsOf(whole: WholeFileHash): Map<string, string> {
  return new Map([...whole.hashes].map(([algorithm, hash]) => [algorithm, `${algorithm}-${hash.digest('base64')}`]));
}

/**
 * Copies the data archive this process decoded before from a .deb with the same bytes
 * as `path` to `dataTarPath`, and returns true; false (nothing written) when there is
 * none, or when `integrity` is given and the file is not it (the caller's own pass then
 * finds and reports the mismatch). Hashes the file only when an archive of its size is kept.
 */
async function reuseDecodedData(path: string, dataTarPath: string, integrity: string | undefined): Promise<boolean> {
  if (decodedData.size === 0) return false;
  const { size } = await stat(path);
  if (![...decodedData.values()].some((kept) => kept.debBytes === size)) return false;
  const algorithm = integrity === undefined ? 'sha256' : integrity.slice(0, integrity.indexOf('-'));
  const whole: WholeFileHash = { hashes: new Map([['sha256', createHash('sha256')], [algorithm, createHash(algorithm)]]), isComplete: true };
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) for (const hash of whole.hashes.values()) hash.update(chunk as Buffer);
  const digests = digestsOf(whole);
  if (integrity !== undefined && digests.get(algorithm) !== integrity) return false;
  const kept = decodedData.get(digests.get('sha256')!);
  if (kept === undefined || !kept.isReady) return false;
  await rm(dataTarPath, { force: true });
  await copyFile(kept.tarPath, dataTarPath, fsConstants.COPYFILE_FICLONE);
  return true;
}

/** Keeps the data archive at `dataTarPath`, decoded from a .deb whose sha256 is `sha256` (`sha256-BASE64`), for reuseDecodedData. Best effort. */
async function keepDecodedData(sha256: string, dataTarPath: string, debBytes: number): Promise<void> {
  // Readers run concurrently (a rootfs reads its packages together): the entry, its file
  // name and its bytes are taken before the first await.
  if (decodedData.has(sha256)) return;
  const size = statSync(dataTarPath).size;
  if (decodedDataBytes + size > decodedDataKeptBytes) return;
  if (decodedDataDir === undefined) {
    decodedDataDir = makeDecodedDataDir();
    holdTemporary(decodedDataDir);
  }
  const tarPath = join(decodedDataDir, `${decodedDataNext++}.tar`);
  const kept = { tarPath, debBytes, isReady: false };
  decodedData.set(sha256, kept);
  decodedDataBytes += size;
  try {
    // A second name for the caller's file (nobody writes to it: readDebEntries writes a
    // new file, never through an old name), else a copy (another file system).
    await link(dataTarPath, tarPath).catch(() => copyFile(dataTarPath, tarPath, fsConstants.COPYFILE_FICLONE));
    kept.isReady = true;
  } catch {
    // Not kept: the next reader decodes the package again.
    decodedData.delete(sha256);
  }
}

/**
 * The files of the .deb at `path` as tar entries carrying the package's own metadata
 * (type, mode including setuid bits, uid, gid, symlink and hardlink targets). The data
 * archive is decompressed to `dataTarPath` (an uncompressed tar the caller owns and
 * must keep until the entries have been written), and entries read their content from
 * it by offset. Entry paths are relative (`usr/bin/hello`); the archive root is
 * skipped. With `check`, the whole file is hashed in the same read (one pass over the
 * .deb) and refused when it is not the pin. Throws ERR_DEB_UNSAFE_PATH, naming the package and the member, when a member
 * name or hardlink target is absolute or holds `..`; ERR_DEB_FORMAT when the package is
 * not a readable .deb. A package this process decoded before (same sha256 of the whole
 * .deb, and the pin when `check` is given) is not decompressed again: its decoded
 * archive is copied to `dataTarPath` (see decodedData); the checks below run all the same.
 */
export async function readDebEntries(path: string, label: string, dataTarPath: string, check?: DebCheck): Promise<TarEntry[]> {
  const algorithm = check === undefined ? 'sha256' : check.integrity.slice(0, check.integrity.indexOf('-'));
  let sha256: string | undefined;
  if (!await reuseDecodedData(path, dataTarPath, check?.integrity)) {
    const whole: WholeFileHash = { hashes: new Map([['sha256', createHash('sha256')], [algorithm, createHash(algorithm)]]), isComplete: false };
    try {
      const data = await openDebArchive(path, label, 'data.tar', whole);
      // A new file, never a truncation: the path may be a second name of a kept archive.
      await rm(dataTarPath, { force: true });
      await pipeline(data, createWriteStream(dataTarPath));
    } catch (cause) {
      if (check === undefined) throw cause;
      // Bytes that do not unpack may be bytes that are not the pinned ones: a pass of its
      // own, on this failure path only, tells which error is the true one.
      const found = await sriOfFile(path, algorithm).catch(() => undefined);
      if (found === undefined || found === check.integrity) throw cause;
      await rm(dataTarPath, { force: true });
      throw await check.onMismatch(found);
    }
    const digests = whole.isComplete ? digestsOf(whole) : undefined;
    if (check !== undefined) {
      const found = digests?.get(algorithm) ?? 'unknown (the read stopped early)';
      if (found !== check.integrity) {
        // Nothing made from bytes that are not the pinned ones is kept.
        await rm(dataTarPath, { force: true });
        throw await check.onMismatch(found);
      }
    }
    sha256 = digests?.get('sha256');
  }
  let members;
  try {
    members = indexTar(dataTarPath);
  } catch (cause) {
    throw debFormatError(label, `the data archive is not a readable tar: ${(cause as Error).message}`);
  }
  for (const member of members) {
    const header = member.header;
    refuseUnsafe(label, pathText(header.path), header.path, 'member');
    if (header.type === 'hardlink') refuseUnsafe(label, pathText(header.path), header.linkTarget, 'hardlink target');
  }
  try {
    const entries = entriesOfTar(dataTarPath);
    if (sha256 !== undefined) await keepDecodedData(sha256, dataTarPath, (await stat(path)).size);
    return entries;
  } catch (cause) {
    if (isRedoError(cause, 'ERR_LAYER_PATH')) {
      throw new RedoError('ERR_DEB_UNSAFE_PATH', `redo: "${label}": package data archive holds an unsafe path`, {
        details: [cause.headline],
        cause,
      });
    }
    throw cause;
  }
}

/** `ALGORITHM-BASE64` of the file at `path`. */
async function sriOfFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `${algorithm}-${hash.digest('base64')}`;
}

function refuseUnsafe(label: string, member: string, bytes: Buffer, what: string): void {
  const text = bytes.toString('latin1');
  const isAbsolute = text.startsWith('/');
  const hasDotDot = text.split('/').includes('..');
  if (!isAbsolute && !hasDotDot) return;
  throw new RedoError('ERR_DEB_UNSAFE_PATH', `redo: "${label}": package data archive holds an unsafe path`, {
    details: [
      `member: "${member}"`,
      `${what}: "${pathText(bytes)}" ${isAbsolute ? 'is absolute' : 'climbs out with ".."'}`,
    ],
    hint: 'a package must only install paths below its root; this one was refused',
  });
}
