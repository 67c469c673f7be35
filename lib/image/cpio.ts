/** Deterministic cpio "newc" archives, the format the Linux kernel unpacks as an initramfs. */

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { RedoError } from '../errors.js';
import { finishDigest, type Sha256Digest } from './digest.js';
import { mtimeFromEnvironment, normaliseEntries, pathText, toMemberPath, type TarEntry } from './tar.js';

/*
 * One newc member (see the kernel's Documentation/driver-api/early-userspace/buffer-format.rst):
 *
 *   offset  size  field
 *   0       6     magic "070701"
 *   6       8     c_ino        \
 *   14      8     c_mode        |
 *   22      8     c_uid         |
 *   30      8     c_gid         |
 *   38      8     c_nlink       |  thirteen fields, each 8 ASCII hex digits,
 *   46      8     c_mtime       |  upper case as GNU cpio writes them
 *   54      8     c_filesize    |
 *   62      8     c_devmajor    |  device of the archived file system (always 0 here)
 *   70      8     c_devminor    |
 *   78      8     c_rdevmajor   |  device numbers of a character/block special file
 *   86      8     c_rdevminor   |
 *   94      8     c_namesize    |  name length including its NUL
 *   102     8     c_check      /   0 for "070701" (only "070702" carries a checksum)
 *   110     name, NUL, zero padding to a multiple of 4 counted from the header start
 *           data (c_filesize bytes), zero padding to a multiple of 4
 *
 * The archive ends with a member named "TRAILER!!!" (nlink 1, everything else 0).
 */

const MAGIC = '070701';
const HEADER_BYTES = 110;
const TRAILER_NAME = Buffer.from('TRAILER!!!');
const MAX_FIELD = 0xffffffff;

/** File-type bits of c_mode, as in <sys/stat.h>. */
const typeBits: Record<TarEntry['type'], number> = {
  file: 0o100000,
  hardlink: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  'character-device': 0o020000,
  'block-device': 0o060000,
  fifo: 0o010000,
};

/** Options for writeCpio. */
export interface WriteCpioOptions {
  /** Seconds since the epoch for every member; default SOURCE_DATE_EPOCH or 0. */
  mtimeSeconds?: number;
  /** Name used in error messages for the archive being written. */
  label?: string;
}

/** What writeCpio produced: the sha256 of the archive and its size. */
export interface CpioResult {
  digest: Sha256Digest;
  sizeBytes: number;
  /** Members written, not counting the trailer. */
  memberCount: number;
}

function hex8(value: number, what: string, label: string, path: Buffer): string {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) {
    throw new RedoError('ERR_CPIO_FIELD', `redo: "${pathText(path)}": ${what} does not fit a cpio newc header in ${label}`, {
      details: [`wanted: 0..${MAX_FIELD}`, `found: ${value}`],
      hint: 'newc stores every number in 8 hex digits; files of 4 GiB or more cannot go into an initrd',
    });
  }
  return value.toString(16).toUpperCase().padStart(8, '0');
}

function padTo4(length: number): number {
  return (4 - (length % 4)) % 4;
}

interface MemberHeader {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  fileSize: number;
  rdevMajor: number;
  rdevMinor: number;
  name: Buffer;
}

function encodeMember(h: MemberHeader, label: string): Buffer {
  const fields = [
    hex8(h.ino, 'inode number', label, h.name),
    hex8(h.mode, 'mode', label, h.name),
    hex8(h.uid, 'uid', label, h.name),
    hex8(h.gid, 'gid', label, h.name),
    hex8(h.nlink, 'link count', label, h.name),
    hex8(h.mtime, 'mtime', label, h.name),
    hex8(h.fileSize, 'size', label, h.name),
    '00000000',
    '00000000',
    hex8(h.rdevMajor, 'device major', label, h.name),
    hex8(h.rdevMinor, 'device minor', label, h.name),
    hex8(h.name.length + 1, 'name length', label, h.name),
    '00000000',
  ];
  const head = Buffer.from(MAGIC + fields.join(''), 'latin1');
  const nameBytes = h.name.length + 1;
  return Buffer.concat([head, h.name, Buffer.alloc(1 + padTo4(HEADER_BYTES + nameBytes))]);
}

/** Synchronous file sink that hashes what it writes. */
class CpioSink {
  private readonly hash = createHash('sha256');
  sizeBytes = 0;
  constructor(private readonly fd: number) {}
  write(bytes: Buffer): void {
    this.hash.update(bytes);
    this.sizeBytes += bytes.length;
    let at = 0;
    while (at < bytes.length) at += writeSync(this.fd, bytes, at, bytes.length - at);
  }
  digest(): Sha256Digest {
    return finishDigest(this.hash);
  }
}

async function writeContent(sink: CpioSink, entry: TarEntry, label: string): Promise<void> {
  const content = entry.content;
  const fail = (detail: string, cause?: unknown): RedoError =>
    new RedoError('ERR_LAYER_READ', `redo: "${pathText(entry.path)}": could not read the file going into ${label}`, {
      details: [detail],
      cause,
    });
  if (content === undefined) {
    if (entry.sizeBytes !== 0) throw fail(`no content given for ${entry.sizeBytes} bytes`);
    return;
  }
  let written = 0;
  switch (content.kind) {
    case 'buffer':
      if (content.bytes.length !== entry.sizeBytes) throw fail(`size: wanted ${entry.sizeBytes}, found ${content.bytes.length}`);
      sink.write(content.bytes);
      written = content.bytes.length;
      break;
    case 'path': {
      let fd: number;
      try {
        fd = openSync(content.path, 'r');
      } catch (cause) {
        throw fail(`open: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, cause);
      }
      try {
        const chunk = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(entry.sizeBytes, 1)));
        let position = content.offsetBytes ?? 0;
        while (written < entry.sizeBytes) {
          const n = readSync(fd, chunk, 0, Math.min(chunk.length, entry.sizeBytes - written), position);
          if (n === 0) break;
          sink.write(chunk.subarray(0, n));
          written += n;
          position += n;
        }
      } finally {
        closeSync(fd);
      }
      break;
    }
    case 'stream':
      for await (const piece of content.open()) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
        if (written + bytes.length > entry.sizeBytes) throw fail(`size: wanted ${entry.sizeBytes}, the stream gave more`);
        sink.write(bytes);
        written += bytes.length;
      }
      break;
    default: {
      const unreachable: never = content;
      throw new TypeError(`unknown content kind ${String(unreachable)}`);
    }
  }
  if (written !== entry.sizeBytes) throw fail(`size: wanted ${entry.sizeBytes}, found ${written} (the file shrank)`);
}

/**
 * Writes a deterministic cpio newc archive of `entries` to the file `outputPath`
 * (created or truncated). Entries are the same model the tar writer takes and are
 * normalised the same way (normaliseEntries: sorted by path bytes, missing parent
 * directories added as 0755 root-owned, duplicates refused; a leading `./` or `/` is
 * dropped and `..` refused with ERR_LAYER_PATH). Names are written
 * without a leading `./`; the root directory itself is not an entry. Each member
 * gets mtime `options.mtimeSeconds` (default SOURCE_DATE_EPOCH or 0), the uid, gid and
 * permission bits of its entry, and an inode number counted from 1 in path order;
 * a hardlink shares its target's inode, both carry the same link count, and the
 * content is stored once, with the first (target) name, which is the order the
 * kernel's initramfs unpacker expects. Directories get link count 2, other members 1.
 * The bytes depend only on the entries and the mtime. Returns the archive's sha256
 * and size. Throws ERR_CPIO_FIELD when a number does not fit 8 hex digits (files of
 * 4 GiB or more), ERR_LAYER_READ when content cannot be read or has the wrong size,
 * and the errors of normaliseEntries.
 */
export async function writeCpio(
  entries: Iterable<TarEntry>,
  outputPath: string,
  options: WriteCpioOptions = {},
): Promise<CpioResult> {
  const label = options.label ?? `"${outputPath}"`;
  const mtime = Math.min(options.mtimeSeconds ?? mtimeFromEnvironment(), MAX_FIELD);
  // Paths from callers may carry a leading "./" or "/"; ".." is refused here.
  const cleaned = [...entries].map((entry) => ({
    ...entry,
    path: toMemberPath(entry.path),
    ...(entry.type === 'hardlink' && entry.linkTarget !== undefined ? { linkTarget: toMemberPath(entry.linkTarget) } : {}),
  }));
  const sorted = normaliseEntries(cleaned, label);

  // Inode numbers and link counts are decided before anything is written, so a
  // file's count includes hardlinks that sort after it.
  const inodeOf = new Map<string, number>();
  const linkCount = new Map<number, number>();
  let nextInode = 1;
  for (const entry of sorted) {
    const key = entry.path.toString('latin1');
    if (entry.type === 'hardlink') {
      // normaliseEntries guarantees the target is an earlier regular file.
      const ino = inodeOf.get(entry.linkTarget!.toString('latin1'))!;
      inodeOf.set(key, ino);
      linkCount.set(ino, (linkCount.get(ino) ?? 1) + 1);
    } else {
      inodeOf.set(key, nextInode);
      linkCount.set(nextInode, entry.type === 'directory' ? 2 : 1);
      nextInode += 1;
    }
  }

  const fd = openSync(outputPath, 'w', 0o644);
  const sink = new CpioSink(fd);
  try {
    for (const entry of sorted) {
      const ino = inodeOf.get(entry.path.toString('latin1'))!;
      let fileSize = 0;
      if (entry.type === 'file') fileSize = entry.sizeBytes;
      if (entry.type === 'symlink') fileSize = entry.linkTarget?.length ?? 0;
      const isDevice = entry.type === 'character-device' || entry.type === 'block-device';
      sink.write(
        encodeMember(
          {
            ino,
            mode: typeBits[entry.type] | (entry.mode & 0o7777),
            uid: entry.uid,
            gid: entry.gid,
            nlink: linkCount.get(ino)!,
            mtime,
            fileSize,
            rdevMajor: isDevice ? (entry.deviceMajor ?? 0) : 0,
            rdevMinor: isDevice ? (entry.deviceMinor ?? 0) : 0,
            name: entry.path,
          },
          label,
        ),
      );
      if (entry.type === 'file') await writeContent(sink, entry, label);
      if (entry.type === 'symlink' && entry.linkTarget !== undefined) sink.write(entry.linkTarget);
      sink.write(Buffer.alloc(padTo4(fileSize)));
    }
    sink.write(
      encodeMember(
        { ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, fileSize: 0, rdevMajor: 0, rdevMinor: 0, name: TRAILER_NAME },
        label,
      ),
    );
  } finally {
    closeSync(fd);
  }
  return { digest: sink.digest(), sizeBytes: sink.sizeBytes, memberCount: sorted.length };
}
