/** `redo-ts lock` as a library call: load verified indexes once, resolve a package list, write its lock only when it changed. */

import { readFile, rename, writeFile } from 'node:fs/promises';
import { loadAptIndexes, loadMirrorIndexes, type IndexOptions, type MirrorSource, type PackageUniverse } from './indexes.js';
import { diffLocks, formatLock, lockOf, lockPathOf, parseLock, type DebianLock, type LockChange } from './lock.js';
import type { PackageList } from './package-list.js';
import { resolvePackages } from './resolve.js';

/** Where the indexes come from: the machine's apt (default) or mirrors, each with its suites. */
export interface IndexSourceOptions extends IndexOptions {
  mirror?: { url: string; suites: string[]; components?: string[]; more?: MirrorSource[] };
}

/** Loads the indexes described by `options` (see loadAptIndexes, loadMirrorIndexes). */
export function loadIndexes(options: IndexSourceOptions): Promise<PackageUniverse> {
  if (options.mirror === undefined) return loadAptIndexes(options);
  const { url, suites, components, more } = options.mirror;
  return loadMirrorIndexes({ ...options, mirror: url, suites, ...(components !== undefined ? { components } : {}), ...(more !== undefined ? { more } : {}) });
}

/** What lockPackageList did. */
export interface LockResult {
  lockPath: string;
  lock: DebianLock;
  /** Packages whose version changed, appeared or left, sorted by name. */
  changes: LockChange[];
  /** False when the lock file already held exactly these bytes. */
  isWritten: boolean;
}

/**
 * Resolves `list` (the package list of the spec at `specPath`) over `universe` and
 * writes the lock beside the spec (atomically, via a temporary file). Without
 * `shouldUpdate`, versions of the existing lock are kept where the indexes still have
 * them and they still fit; with it, every package moves to its highest fitting version.
 * Throws the resolver's errors (nothing is written then) and ERR_DEBIAN_LOCK_INVALID for
 * an unreadable old lock when not updating.
 */
export async function lockPackageList(specPath: string, list: PackageList, universe: PackageUniverse, options: { shouldUpdate?: boolean; mirror?: string } = {}): Promise<LockResult> {
  const lockPath = lockPathOf(specPath);
  let oldText: string | undefined;
  try {
    oldText = await readFile(lockPath, 'utf8');
  } catch {
    oldText = undefined;
  }
  const old = oldText === undefined ? undefined : tryParse(oldText, lockPath, options.shouldUpdate === true);
  const preferredVersions = options.shouldUpdate === true || old === undefined ? undefined : new Map(old.packages.map((p) => [p.name, p.version]));
  const resolved = resolvePackages(universe, list.entries.map((entry) => entry.relation), {
    isRecommendsWanted: list.isRecommendsWanted,
    ...(preferredVersions !== undefined ? { preferredVersions } : {}),
  });
  const lock = lockOf(specPath, list, universe.architecture, universe.indexes, resolved, options.mirror);
  const text = formatLock(lock);
  const isWritten = text !== oldText;
  if (isWritten) {
    const temporary = `${lockPath}.${process.pid}.tmp`;
    await writeFile(temporary, text);
    await rename(temporary, lockPath);
  }
  return { lockPath, lock, changes: diffLocks(old, lock), isWritten };
}

function tryParse(text: string, path: string, isUpdate: boolean): DebianLock | undefined {
  try {
    return parseLock(text, path);
  } catch (error) {
    // --update replaces a damaged lock; a plain lock refuses to guess.
    if (isUpdate) return undefined;
    throw error;
  }
}
