/** Directory → sorted tar entries with metadata from a declared table, never from the host. */

import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { RedoError } from '../errors.js';
import { MetadataMatcher, defaultMetadata, type MetadataTable } from './metadata.js';
import { comparePaths, pathText, toMemberPath, type TarEntry, type TarEntryType } from './tar-header.js';

/** Options for collectEntries. */
export interface CollectOptions {
  /** Declared modes and owners; paths it does not cover get defaultMetadata. */
  metadata?: MetadataTable;
  /**
   * `keep` (default): files sharing an inode become one file plus hardlinks to it,
   * the first path in byte order being the file and lending the links its mode and
   * owner. `copy`: each is stored as a file.
   */
  hardlinks?: 'keep' | 'copy';
  /** Member path prefix the folder's contents go under (e.g. "opt/app"); default none. */
  prefix?: string;
  /** How the folder is named in messages (a path relative to the project root). */
  label?: string;
}

function typeOf(stats: Stats): TarEntryType | 'socket' {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isCharacterDevice()) return 'character-device';
  if (stats.isBlockDevice()) return 'block-device';
  return 'socket';
}

/**
 * Walks `dir` (lstat only: symlinks are stored as links and never followed, even
 * when they point outside the folder) and returns one entry per path below it,
 * sorted by path bytes, with mode/uid/gid from `options.metadata` over the default
 * rule. Names that are not UTF-8 are kept as raw bytes. File content is referenced
 * by path, not read. Throws, naming the path:
 * ERR_LAYER_SPECIAL_FILE for a socket, fifo or device the table does not name
 * exactly (a declared socket is left out: tar cannot hold one); ERR_LAYER_READ for
 * a folder that cannot be listed; ERR_METADATA_UNMATCHED for a rule matching no path.
 */
export function collectEntries(dir: string, options: CollectOptions = {}): TarEntry[] {
  const label = options.label ?? dir;
  const matcher = new MetadataMatcher(options.metadata);
  // Without rules every path gets the default: no per-path key to match.
  const hasRules = (options.metadata?.rules.length ?? 0) > 0;
  const prefix = options.prefix === undefined || options.prefix === '' ? null : toMemberPath(options.prefix);
  const entries: TarEntry[] = [];
  const inodes = new Map<string, TarEntry[]>();

  // Member paths are views into the host paths (the part after the root and its
  // slash): one Buffer made per path, not two.
  const root = Buffer.from(dir);
  const walk = (hostDir: Buffer, memberDir: Buffer | null): void => {
    let names: Buffer[];
    try {
      names = readdirSync(hostDir, { encoding: 'buffer' });
    } catch (cause) {
      throw new RedoError('ERR_LAYER_READ', `redo: "${memberLabel(label, memberDir)}": cannot list the folder`, {
        details: [`error: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`],
        cause,
      });
    }
    for (const name of names) {
      const hostPath = Buffer.concat([hostDir, SLASH, name]);
      const memberPath = hostPath.subarray(root.length + 1);
      let stats: Stats;
      try {
        stats = lstatSync(hostPath);
      } catch (cause) {
        throw new RedoError('ERR_LAYER_READ', `redo: "${memberLabel(label, memberPath)}": cannot stat`, { cause });
      }
      const type = typeOf(stats);
      if (type === 'socket' || type === 'fifo' || type === 'character-device' || type === 'block-device') {
        if (!matcher.isDeclared(memberPath)) {
          throw new RedoError('ERR_LAYER_SPECIAL_FILE', `redo: "${memberLabel(label, memberPath)}": is a ${type}, which a layer holds only when declared`, {
            hint: `name it in the metadata table (e.g. "${pathText(memberPath)} 0644 0 0"), or remove it from the rootfs`,
          });
        }
        if (type === 'socket') {
          matcher.resolve(memberPath, defaultMetadata(type, 0));
          continue;
        }
      }
      const meta = hasRules ? matcher.resolve(memberPath, defaultMetadata(type, stats.mode)) : defaultMetadata(type, stats.mode);
      const entry: TarEntry = {
        path: memberPath,
        type: type as TarEntryType,
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        sizeBytes: 0,
      };
      if (type === 'file') {
        entry.sizeBytes = stats.size;
        entry.content = { kind: 'path', path: hostPath };
        if (stats.nlink > 1 && options.hardlinks !== 'copy') {
          const key = `${stats.dev}:${stats.ino}`;
          const group = inodes.get(key);
          if (group === undefined) inodes.set(key, [entry]);
          else group.push(entry);
        }
      } else if (type === 'symlink') {
        entry.linkTarget = readlinkSync(hostPath, { encoding: 'buffer' });
      } else if (type === 'character-device' || type === 'block-device') {
        // Linux dev_t: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
        entry.deviceMajor = Math.floor(stats.rdev / 256) & 0xfff;
        entry.deviceMinor = (stats.rdev & 0xff) | ((Math.floor(stats.rdev / 0x100000) & 0xfff) << 8);
      }
      entries.push(entry);
      if (type === 'directory') walk(hostPath, memberPath);
    }
  };

  walk(root, null);
  matcher.checkAllMatched(`"${label}"`);

  // Hardlinks: the first path in byte order keeps the content; inode numbers only
  // group paths and never reach the bytes.
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    group.sort((a, b) => comparePaths(a.path, b.path));
    const first = group[0]!;
    for (const other of group.slice(1)) {
      other.type = 'hardlink';
      other.linkTarget = first.path;
      other.mode = first.mode;
      other.uid = first.uid;
      other.gid = first.gid;
      other.sizeBytes = 0;
      delete other.content;
    }
  }

  if (prefix !== null) {
    for (const entry of entries) {
      entry.path = Buffer.concat([prefix, SLASH, entry.path]);
      if (entry.type === 'hardlink') entry.linkTarget = Buffer.concat([prefix, SLASH, entry.linkTarget!]);
    }
  }
  return sortedByPath(entries);
}

/**
 * `entries` sorted by path bytes (comparePaths' order), compared as latin1 strings: one
 * string per entry, then V8's string comparison, instead of a Buffer.compare call into
 * C++ for each of the n log n comparisons (a third of the listing's time at 12,000 files).
 */
function sortedByPath(entries: TarEntry[]): TarEntry[] {
  const keyed = entries.map((entry) => ({ key: entry.path.toString('latin1'), entry }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.entry);
}

const SLASH = Buffer.from('/');

function memberLabel(label: string, member: Buffer | null): string {
  return member === null ? label : `${label}/${pathText(member)}`;
}
