/** Unpacking a tar archive (plain, gzip, xz, bzip2 or zstd) into a build folder with redo-ts's own code: no host tar decides what lands there. */

import { createWriteStream } from 'node:fs';
import { chmod, link, lstat, lutimes, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RedoError, isRedoError } from '../errors.js';
import { pathText, readTar } from '../image/tar.js';
import { openDecompressed } from './decompress.js';

/** What unpackArchive needs to know besides the archive and the folder. */
export interface UnpackOptions {
  /** Subject of messages: the spec, quoted (`"targets/app.spec.yaml"`). */
  subject: string;
  /** What is being done, for messages: `unpack of "app.tar.gz"`. */
  what: string;
  /**
   * Called before each write with the host path it goes to, the member name, and whether a
   * symlink at the path itself would be written through; throws (ERR_BUILD_ESCAPE) when
   * the write would land outside the folder it is confined to.
   */
  check: (path: string, member: string, isLastFollowed: boolean) => void;
  /** Called after a symlink is made or something is removed, so a checker that remembers resolved folders forgets them. */
  onTreeChanged?: () => void;
}

/**
 * Unpacks the tar at `archivePath` (compression recognised by its magic bytes:
 * decompress.ts) into the existing folder `into`, member by member in archive order,
 * the same way on every machine:
 * - files get the member's permission bits with a fixed umask 022 (no setuid, setgid or
 *   sticky bit, never the caller's umask), folders those plus the owner's rwx (so the
 *   build can write in them); the owner is always the caller; every member keeps its
 *   mtime (folders' set last, as tar does), so make sees the archive's own order;
 * - a member replaces what is at its name (a folder member keeps an existing folder
 *   and replaces a symlink there, as GNU tar does); missing parent folders are made;
 * - symlinks are made as they are; a hardlink links to the earlier member it names;
 * - every write is checked first with `options.check` (a symlink on the way may not
 *   lead out of the folder), and a member named with `..` is refused (ERR_BUILD_ESCAPE).
 * Throws ERR_SPEC_BUILD_FAILED for an archive that is not a tar or does not decompress,
 * a fifo or device member, a hardlink to nothing, or a name that is not UTF-8.
 */
export async function unpackArchive(archivePath: string, into: string, options: UnpackOptions): Promise<void> {
  const failure = (problem: string, cause?: unknown): RedoError =>
    new RedoError('ERR_SPEC_BUILD_FAILED', `redo: ${options.subject}: ${options.what} failed`, {
      details: [`problem: ${problem}`],
      hint: 'check that the source is a tar archive (plain, .gz, .xz, .bz2 or .zst); nothing was delivered',
      ...(cause !== undefined ? { cause } : {}),
    });
  const folders: Array<{ at: string; mode: number; mtimeSeconds: number }> = [];
  const input = openDecompressed(archivePath, (problem) => failure(problem));
  try {
    for await (const entry of readTar(input, { label: options.what })) {
      const member = entry.path.toString('utf8');
      if (!Buffer.from(member, 'utf8').equals(entry.path)) throw failure(`member "${pathText(entry.path)}" has a name that is not UTF-8`);
      const at = join(into, member);
      options.check(at, member, false);
      await mkdir(dirname(at), { recursive: true });
      const existing = await lstat(at).catch(() => undefined);
      if (entry.type === 'directory') {
        if (existing?.isDirectory() !== true) {
          if (existing !== undefined) {
            await rm(at, { recursive: true, force: true });
            options.onTreeChanged?.();
          }
          await mkdir(at, { mode: 0o700 });
        }
        folders.push({ at, mode: (entry.mode & 0o755) | 0o700, mtimeSeconds: entry.mtimeSeconds });
        continue;
      }
      if (entry.type === 'fifo' || entry.type === 'character-device' || entry.type === 'block-device') {
        throw failure(`member "${member}" is a ${entry.type}: a build folder holds only files, folders and links`);
      }
      if (existing !== undefined) {
        await rm(at, { recursive: true, force: true });
        options.onTreeChanged?.();
      }
      switch (entry.type) {
        case 'file':
          await pipeline(entry.body, createWriteStream(at, { mode: 0o600 }));
          await chmod(at, entry.mode & 0o755);
          await utimes(at, entry.mtimeSeconds, entry.mtimeSeconds);
          break;
        case 'symlink':
          await symlink(entry.linkTarget!.toString('utf8'), at);
          options.onTreeChanged?.();
          await lutimes(at, entry.mtimeSeconds, entry.mtimeSeconds);
          break;
        case 'hardlink': {
          const target = entry.linkTarget!.toString('utf8');
          options.check(join(into, target), target, true);
          try {
            await link(join(into, target), at);
          } catch (cause) {
            throw failure(`member "${member}" is a hard link to "${target}", which cannot be linked: ${(cause as Error).message}`, cause);
          }
          break;
        }
        default: {
          const never: never = entry.type;
          throw failure(`member "${member}" has an unknown type ${String(never)}`);
        }
      }
    }
  } catch (cause) {
    input.destroy();
    if (isRedoError(cause, 'ERR_LAYER_PATH')) {
      throw new RedoError('ERR_BUILD_ESCAPE', `redo: ${options.subject}: ${options.what} would write outside the build folder`, {
        details: (cause as RedoError).details ?? [],
        hint: 'a member name climbs out with "..": such an archive cannot be unpacked safely',
        cause,
      });
    }
    if (isRedoError(cause, 'ERR_TAR_MALFORMED')) throw failure(`not a readable tar archive: ${(cause as Error).message.split('\n')[0]}`, cause);
    throw cause;
  }
  // Deepest first, so setting a folder's time is not undone by its children's.
  const depth = (path: string): number => path.split('/').length;
  for (const folder of folders.sort((a, b) => depth(b.at) - depth(a.at))) {
    await chmod(folder.at, folder.mode);
    await utimes(folder.at, folder.mtimeSeconds, folder.mtimeSeconds);
  }
}
