/** Fragments kept by content in the cache: a build environment's fragment is made from its locked packages once, and every later clean build with the same inputs and the same redo-ts copies it. */

import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync, type Stats,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pruneUnusedEntries, removeLeftovers } from '../sandbox/environment.js';
import { holdTemporary } from './scratch.js';
import { hostArchitecture } from './debian/indexes.js';

/** Bumped whenever what an entry holds, or how its key is made, changes. */
const entryFormat = 1;

/** The folder of the cache (`$REDO_TS_CACHE`) the kept fragments live in, one `KEY/` folder each. */
export const keptFragmentsFolder = 'environment-fragments';

/** Everything a kept fragment's bytes and result follow from (see keptFragmentKey). */
export interface KeptFragmentInputs {
  /** The code that builds fragments (codeKey()). */
  codeKey: string;
  /** The spec's path relative to the project root: results and messages name it. */
  specPath: string;
  /** The spec's text. */
  specText: string;
  /** The text of its package list's lock, when it has one. */
  lockText?: string;
  /** The machine's Debian architecture when the spec has a package list (a lock for another one is assembled otherwise). */
  hostArchitecture?: string;
  /** Every member's mtime. */
  mtimeSeconds: number;
  /** The one layer written, when only one is. */
  layer?: string;
}

/** The key of a kept fragment: the sha256 (hex) of the entry format and every input. Pure. */
export function keptFragmentKey(inputs: KeptFragmentInputs): string {
  return createHash('sha256').update(JSON.stringify({
    format: entryFormat,
    code: inputs.codeKey,
    spec: inputs.specPath,
    specText: inputs.specText,
    lockText: inputs.lockText ?? null,
    architecture: inputs.hostArchitecture ?? null,
    mtime: inputs.mtimeSeconds,
    layer: inputs.layer ?? null,
  })).digest('hex');
}

const codeKeys = new Map<string, string>();

/**
 * A hash of the running redo-ts code, read once per process: where this module runs from
 * the bundle, the sha256 of every source it was made from (dist/bundle/source.sha256, which
 * scripts/bundle.mjs writes); from tsc's dist/lib or the TypeScript sources (tests), the
 * sha256 of every .js and .ts file of that library folder. So a fragment kept by one
 * version of the code is never taken by another. `moduleDir` is for tests.
 */
export function codeKey(moduleDir: string = dirname(fileURLToPath(import.meta.url))): string {
  let key = codeKeys.get(moduleDir);
  if (key !== undefined) return key;
  const sourceSha256 = join(moduleDir, 'source.sha256');
  if (existsSync(sourceSha256)) {
    key = `bundle:${readFileSync(sourceSha256, 'utf8').trim()}`;
  } else {
    // dist/lib/sources/ or lib/sources/: the library is the folder above.
    const libDir = resolve(moduleDir, '..');
    const hash = createHash('sha256');
    const files = readdirSync(libDir, { recursive: true }).map(String).filter((name) => /\.(js|ts)$/.test(name)).sort();
    for (const name of files) hash.update(`${name}\0`).update(readFileSync(join(libDir, name))).update('\0');
    key = `library:${hash.digest('hex')}`;
  }
  codeKeys.set(moduleDir, key);
  return key;
}

/**
 * The machine's Debian architecture as hostArchitecture (`dpkg --print-architecture`)
 * answers it, remembered in the cache (`dpkg-architectures/`) by the identity of the dpkg that answered (its path
 * on `env.PATH`, device, inode, size, mtime and ctime, as the engine's stamps go by), so a
 * clean build that takes a kept fragment starts no process to make its key; another or
 * an upgraded dpkg is asked again. Without a dpkg on PATH, or with a cache that cannot be
 * written, it asks hostArchitecture (which answers amd64 where there is no dpkg).
 */
export async function machineArchitecture(env: NodeJS.ProcessEnv, cacheDir: string): Promise<string> {
  const dpkg = findOnPath('dpkg', env.PATH);
  if (dpkg === undefined) return hostArchitecture(env);
  const identity = createHash('sha256').update(JSON.stringify([dpkg.path, dpkg.stats.dev, dpkg.stats.ino, dpkg.stats.size, dpkg.stats.mtimeMs, dpkg.stats.ctimeMs])).digest('hex');
  const memo = join(cacheDir, 'dpkg-architectures', identity);
  try {
    const remembered = readFileSync(memo, 'utf8').trim();
    if (/^[a-z0-9-]+$/.test(remembered)) return remembered;
  } catch {
    // Not asked yet.
  }
  const answer = await hostArchitecture(env);
  try {
    mkdirSync(dirname(memo), { recursive: true });
    const temporary = `${memo}.${process.pid}.tmp`;
    writeFileSync(temporary, `${answer}\n`);
    renameSync(temporary, memo);
  } catch {
    // A read-only cache: asked again next time.
  }
  return answer;
}

/** The first executable `name` in the absolute folders of `path` (as execvp finds it), with its stat; undefined when none or PATH is unset. */
function findOnPath(name: string, path: string | undefined): { path: string; stats: Stats } | undefined {
  if (path === undefined || path === '') return undefined;
  for (const dir of path.split(':')) {
    // A relative or empty entry is looked up from the working folder: leave that to the tool.
    if (!dir.startsWith('/')) return undefined;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      const stats = statSync(candidate);
      if (stats.isFile()) return { path: candidate, stats };
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** What takeKeptFragment found. */
export type KeptFragmentLookup =
  | { kind: 'hit'; result: unknown }
  | { kind: 'absent' }
  /** The entry's tar does not hash to what it was kept under, or its record is unreadable: it was dropped. */
  | { kind: 'damaged'; why: string };

/**
 * Copies the fragment kept under `key` to `outPath` (beside it first, then renamed over
 * it, so a failure leaves any old output intact), hashing the bytes as it copies them:
 * the copy is used only when they hash to the digest the entry was kept with; otherwise
 * the entry is dropped, the copy removed, and `damaged` says why. A hit marks the entry
 * used now (its folder's mtime, what pruneKeptFragments goes by) and returns the build's
 * result as it was kept (JSON).
 */
export function takeKeptFragment(cacheDir: string, key: string, outPath: string): KeptFragmentLookup {
  const folder = join(cacheDir, keptFragmentsFolder, key);
  let record: { format?: number; sha256?: string; result?: unknown };
  try {
    record = JSON.parse(readFileSync(join(folder, 'result.json'), 'utf8')) as typeof record;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(join(folder, 'fragment.tar'))) return { kind: 'absent' };
    dropEntry(folder);
    return { kind: 'damaged', why: `its record cannot be read: ${(error as Error).message}` };
  }
  if (record.format !== entryFormat || typeof record.sha256 !== 'string' || typeof record.result !== 'object' || record.result === null) {
    dropEntry(folder);
    return { kind: 'damaged', why: 'its record lacks a field' };
  }
  const absolute = resolve(outPath);
  const temporary = join(dirname(absolute), `.${absolute.split('/').pop()}.${process.pid}.kept.tmp`);
  const release = holdTemporary(temporary);
  try {
    let found: string;
    try {
      found = copyHashing(join(folder, 'fragment.tar'), temporary);
    } catch (error) {
      rmSync(temporary, { force: true });
      dropEntry(folder);
      return { kind: 'damaged', why: `its tar cannot be read: ${(error as Error).message}` };
    }
    if (found !== record.sha256) {
      rmSync(temporary, { force: true });
      dropEntry(folder);
      return { kind: 'damaged', why: `its tar hashes to sha256:${found}, not to sha256:${record.sha256}` };
    }
    renameSync(temporary, absolute);
  } finally {
    release();
  }
  markUsed(folder);
  return { kind: 'hit', result: record.result };
}

/**
 * Keeps the fragment at `tarPath`, which hashes to `sha256` (hex, as its writer computed
 * it), and the build's `result` under `key`: assembled in a folder of its own
 * (`.tmp-PID-…`) and renamed into place, so a build killed meanwhile (kill -9) leaves
 * nothing a lookup would take (the next keep, or pruneKeptFragments, removes it).
 * Best effort: a cache that cannot be written, or a tar that changed since it was
 * written, keeps nothing, and the build goes on. Returns whether it kept it.
 */
export function keepFragment(cacheDir: string, key: string, tarPath: string, sha256: string, result: unknown): boolean {
  const home = join(cacheDir, keptFragmentsFolder);
  const final = join(home, key);
  const temporary = join(home, `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(home, { recursive: true });
    removeLeftovers(home, 0);
    mkdirSync(temporary);
    if (copyHashing(tarPath, join(temporary, 'fragment.tar')) !== sha256) return false;
    writeFileSync(join(temporary, 'result.json'), `${JSON.stringify({ format: entryFormat, sha256, result }, null, 2)}\n`);
    try {
      renameSync(temporary, final);
    } catch {
      // Another build kept the same fragment first: theirs is identical.
      return existsSync(join(final, 'result.json'));
    }
    return true;
  } catch {
    return false;
  } finally {
    rmSync(temporary, { recursive: true, force: true });
  }
}

/** One kept fragment pruneKeptFragments removed. */
export interface PrunedFragment {
  key: string;
  /** The spec it was built from (its record), for the listing. */
  spec: string;
  /** When it was last used (its folder's mtime), ms since the epoch. */
  lastUsedMs: number;
}

/**
 * Removes from `CACHE/environment-fragments` every kept fragment not used for
 * `unusedForMs`, and what a killed keep left (its process gone, or older than a day).
 * An entry is renamed aside before it is deleted, so a build meanwhile finds it whole
 * or not at all. Returns what it removed.
 */
export function pruneKeptFragments(cacheDir: string, unusedForMs: number, now = Date.now()): { removed: PrunedFragment[]; leftovers: number } {
  const { removed, leftovers } = pruneUnusedEntries(join(cacheDir, keptFragmentsFolder), unusedForMs, now, (folder) => {
    try {
      return (JSON.parse(readFileSync(join(folder, 'result.json'), 'utf8')) as { result?: { spec?: string } }).result?.spec ?? 'unknown spec';
    } catch {
      return 'unknown spec'; // No record: removed all the same.
    }
  });
  return { removed: removed.map(({ key, lastUsedMs, about }) => ({ key, spec: about, lastUsedMs })), leftovers };
}

/** Renames `folder` aside and deletes it; false when it could not be moved (gone, or not ours). */
function dropEntry(folder: string): boolean {
  const aside = join(dirname(folder), `.tmp-${process.pid}-drop-${randomBytes(4).toString('hex')}`);
  try {
    renameSync(folder, aside);
  } catch {
    return false;
  }
  rmSync(aside, { recursive: true, force: true });
  return true;
}

/** Sets the entry folder's mtime to now: its last use. Best effort (a read-only cache still builds). */
function markUsed(folder: string): void {
  try {
    const now = new Date();
    utimesSync(folder, now, now);
  } catch {
    // Not ours to write: the entry is still good to use.
  }
}

/** Copies `from` to `to` in one pass and returns the sha256 (hex) of the bytes copied. */
function copyHashing(from: string, to: string): string {
  const hash = createHash('sha256');
  const input = openSync(from, 'r');
  try {
    const output = openSync(to, 'w', 0o644);
    try {
      const buffer = Buffer.allocUnsafe(1 << 20);
      for (let read = readSync(input, buffer); read > 0; read = readSync(input, buffer)) {
        const chunk = buffer.subarray(0, read);
        hash.update(chunk);
        for (let written = 0; written < read;) written += writeSync(output, chunk, written);
      }
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(input);
  }
  return hash.digest('hex');
}
