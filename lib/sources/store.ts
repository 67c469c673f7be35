/** The content-addressed download cache: a thin wrapper over cacache (its only importer). */

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RedoError } from '../errors.js';
import { algorithmOf, checkFile, parseIntegrity, type Integrity } from './integrity.js';
import { holdTemporary } from './scratch.js';

/** cacache, loaded on first use: it costs more to load than the rest of a small build does to run (issue 20). */
let cacacheModule: Promise<typeof import('cacache')> | undefined;
function cacache(): Promise<typeof import('cacache')> {
  cacacheModule ??= import('cacache').then((module) => module.default);
  return cacacheModule;
}

/**
 * The cache folder: `$REDO_TS_CACHE` when set and non-empty, else `~/.cache/redo-ts`.
 * Pure: reads only the `env` it is given.
 */
export function cacheDirFrom(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.REDO_TS_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.cache', 'redo-ts');
}

let insertCount = 0;

/**
 * Runs one cacache insert with its temporary files in a folder of their own,
 * `CACHE/tmp/redo-ts-PID-N/` (cacache's tmpPrefix may name a subfolder), removed when the
 * insert ends and, should the process be signalled meanwhile, on SIGINT/SIGTERM/SIGHUP:
 * an interrupted insert leaves no partial file in the cache.
 */
async function withInsertFolder<T>(cacheDir: string, insert: (tmpPrefix: string) => Promise<T>): Promise<T> {
  insertCount += 1;
  const name = `redo-ts-${process.pid}-${insertCount}`;
  const folder = join(cacheDir, 'tmp', name);
  const release = holdTemporary(folder);
  try {
    return await insert(`${name}/part`);
  } finally {
    await rm(folder, { recursive: true, force: true });
    release();
  }
}

/** Index key of a source in the cache: the pin itself, so equal pins share one copy. */
function keyOf(integrity: Integrity): string {
  return `redo-ts:source:${integrity}`;
}

/** What a checked look-up of a pinned entry found. */
export type StoreLookup =
  | { kind: 'hit'; path: string }
  | { kind: 'absent' }
  /** The cached bytes hash to `found`, not to the pin: the entry was dropped (index line and content file). */
  | { kind: 'damaged'; path: string; found: Integrity };

/** An entry the cache index names, its bytes not yet read (lookUpInStore). */
export type StoreEntry = { kind: 'hit'; path: string } | { kind: 'absent' };

/**
 * Looks up the bytes pinned by `integrity` in the cache index only: the content file is
 * neither read nor hashed, so `hit` proves nothing yet. The caller proves the bytes in
 * the pass that consumes them (cacache's verified reads are the model): copyOutOfStore
 * or readOutOfStore hash as they read and, on a mismatch at the end, drop the entry;
 * a consumer that cannot stream (a tool reading the file in place) uses findInStore,
 * which hashes first. The path is shared and read-only.
 */
export async function lookUpInStore(cacheDir: string, integrity: Integrity): Promise<StoreEntry> {
  const info = await (await cacache()).get.info(cacheDir, keyOf(integrity));
  return info ? { kind: 'hit', path: info.path } : { kind: 'absent' };
}

/**
 * Looks up the bytes pinned by `integrity` and proves them in a pass of its own: the
 * content file is hashed with the pin's algorithm before its path is returned (`hit`).
 * For consumers that must hand the file to something that reads it in place (dpkg-deb
 * style ranged reads of a .deb, a package manager's own cache); a consumer that streams
 * the bytes uses lookUpInStore and copyOutOfStore/readOutOfStore instead, so a large
 * file is read once. A file that hashes to anything else is `damaged`: its index entry
 * and content file are removed, so a later insertIntoStore writes fresh bytes instead of
 * keeping the bad ones (cacache never overwrites an existing content file). The
 * returned file is shared and read-only.
 */
export async function findInStore(cacheDir: string, integrity: Integrity): Promise<StoreLookup> {
  const info = await (await cacache()).get.info(cacheDir, keyOf(integrity));
  if (!info) return { kind: 'absent' };
  let check: { matches: boolean; found: Integrity };
  try {
    check = await checkFile(info.path, integrity);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw cause;
  }
  if (check.matches) return { kind: 'hit', path: info.path };
  await dropEntry(cacheDir, keyOf(integrity), info.path);
  return { kind: 'damaged', path: info.path, found: check.found };
}

/** What a verified read of a cache entry found: its bytes matched, it was gone, or it was damaged (and dropped). */
export type VerifiedRead = { kind: 'hit' } | { kind: 'absent' } | { kind: 'damaged'; path: string; found: Integrity };

/**
 * Copies the cache entry at `entryPath` (from lookUpInStore) to `destination`, hashing
 * the bytes with the algorithm of `integrity` as they pass: one read of the entry. When
 * the hash at the end is not `integrity`, `destination` is removed, the entry is dropped
 * (index line and content file) and `damaged` says what the bytes hash to; the caller
 * fetches again or, offline, fails with damagedEntryError. A content file gone meanwhile
 * is `absent` (nothing written). Writes `destination` (mode 0644 before the umask).
 */
export async function copyOutOfStore(cacheDir: string, integrity: Integrity, entryPath: string, destination: string): Promise<VerifiedRead> {
  const hash = createHash(algorithmOf(integrity));
  const input = createReadStream(entryPath, { highWaterMark: 1024 * 1024 });
  input.on('data', (chunk) => hash.update(chunk as Buffer));
  try {
    await pipeline(input, createWriteStream(destination));
  } catch (cause) {
    await rm(destination, { force: true });
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT' && (cause as NodeJS.ErrnoException).path === entryPath) return { kind: 'absent' };
    throw cause;
  }
  const found = `${algorithmOf(integrity)}-${hash.digest('base64')}` as Integrity;
  if (found === integrity) return { kind: 'hit' };
  await rm(destination, { force: true });
  await dropEntry(cacheDir, keyOf(integrity), entryPath);
  return { kind: 'damaged', path: entryPath, found };
}

/**
 * Reads the cache entry at `entryPath` (a manifest or a config: small) into memory and
 * hashes the bytes read: `hit` with them when they match `integrity`; otherwise the entry
 * is dropped and `damaged` says what they hash to. `absent` when the file is gone.
 */
export async function readOutOfStore(cacheDir: string, integrity: Integrity, entryPath: string): Promise<{ kind: 'hit'; bytes: Buffer } | Exclude<VerifiedRead, { kind: 'hit' }>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(entryPath);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw cause;
  }
  const found = `${algorithmOf(integrity)}-${createHash(algorithmOf(integrity)).update(bytes).digest('base64')}` as Integrity;
  if (found === integrity) return { kind: 'hit', bytes };
  await dropEntry(cacheDir, keyOf(integrity), entryPath);
  return { kind: 'damaged', path: entryPath, found };
}

/**
 * Drops the entry pinned by `integrity` whose content file is `path`: found damaged by a
 * consumer that hashed it as it used it (a package manager's own verified copy, say).
 * A later insertIntoStore writes fresh bytes.
 */
export async function dropFromStore(cacheDir: string, integrity: Integrity, path: string): Promise<void> {
  await dropEntry(cacheDir, keyOf(integrity), path);
}

/** Removes `key`'s index entry and the content file at `path` (a damaged entry). */
async function dropEntry(cacheDir: string, key: string, path: string): Promise<void> {
  await (await cacache()).rm.entry(cacheDir, key);
  await rm(path, { force: true });
}

/**
 * The error for a damaged cache entry that nothing can replace (offline, or the origin
 * failed): names the entry's file, the wanted and the found hash (`more` lines after
 * them), and says the entry was dropped.
 */
export function damagedEntryError(subject: string, wanted: Integrity, lookup: { path: string; found: Integrity }, hint: string, more: readonly string[] = [], cause?: unknown): RedoError {
  return new RedoError('ERR_CACHE_DAMAGED', `${subject}: the cached copy does not match its pin`, {
    details: [`entry:  ${lookup.path}`, `wanted: ${wanted}`, `found:  ${lookup.found}`, ...more, 'the damaged copy was dropped from the cache; nothing was built'],
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Copies the file at `path`, whose bytes the caller has already checked against
 * `integrity`, into the cache and returns the cached path. cacache hashes again as it
 * writes and moves the content into place atomically, so a crash leaves no partial
 * entry. `origin` (a URL) is kept in the index entry's metadata for humans.
 */
export async function insertIntoStore(cacheDir: string, integrity: Integrity, path: string, origin: string): Promise<string> {
  const { size } = await stat(path);
  await withInsertFolder(cacheDir, async (tmpPrefix) => {
    const options = { integrity, algorithms: [algorithmOf(integrity)], metadata: { origin }, tmpPrefix };
    if (size === 0) {
      // cacache's write stream rejects an empty input, so empty files go in as a buffer.
      await (await cacache()).put(cacheDir, keyOf(integrity), Buffer.alloc(0), options);
    } else {
      await pipeline(createReadStream(path), (await cacache()).put.stream(cacheDir, keyOf(integrity), options));
    }
  });
  const info = await (await cacache()).get.info(cacheDir, keyOf(integrity));
  if (!info) throw new Error(`cache entry for ${integrity} vanished after insert`);
  return info.path;
}

/**
 * Path and metadata of the cached file stored under `key` (a namespaced key such as
 * `redo-ts:debian-effects:HEX`, for derived data rather than pinned sources), or
 * undefined. The content is hashed against the integrity its index entry records before
 * the path is returned; a file that differs is dropped and reported as absent (derived
 * data is made again). Shared, read-only.
 */
export async function findKeyedInStore(cacheDir: string, key: string): Promise<{ path: string; metadata: unknown } | undefined> {
  const info = await (await cacache()).get.info(cacheDir, key);
  if (!info) return undefined;
  const recorded = parseIntegrity(String(info.integrity));
  let isIntact = false;
  try {
    isIntact = recorded !== undefined && (await checkFile(info.path, recorded)).matches;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw cause;
  }
  if (!isIntact) {
    await dropEntry(cacheDir, key, info.path);
    return undefined;
  }
  return { path: info.path, metadata: info.metadata };
}

/** Stores the file at `path` under `key` with `metadata`, atomically; returns the cached path. */
export async function insertKeyedIntoStore(cacheDir: string, key: string, path: string, metadata: unknown): Promise<string> {
  const store = await cacache();
  await withInsertFolder(cacheDir, (tmpPrefix) => pipeline(createReadStream(path), store.put.stream(cacheDir, key, { metadata, tmpPrefix })));
  const info = await store.get.info(cacheDir, key);
  if (!info) throw new Error(`cache entry ${key} vanished after insert`);
  return info.path;
}

/** One damaged entry found by verifyStore. */
export interface DamagedEntry {
  key: string;
  path: string;
  wanted: string;
  /** What the content hashes to now; `missing` when the content file is gone. */
  found: string;
}

/**
 * Checks every entry of the cache (`redo-ts cache verify`): each content file is hashed
 * with the algorithm of the hash it is stored under (a pinned source's key is its pin,
 * so the pin is what it is checked against; derived entries against their index
 * integrity). Damaged or missing entries are dropped. Returns how many entries were
 * checked and the damaged ones, sorted by key.
 */
export async function verifyStore(cacheDir: string): Promise<{ checkedCount: number; damaged: DamagedEntry[] }> {
  const entries = Object.values(await (await cacache()).ls(cacheDir)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const damaged: DamagedEntry[] = [];
  for (const entry of entries) {
    const pinned = entry.key.startsWith('redo-ts:source:') ? entry.key.slice('redo-ts:source:'.length) : String(entry.integrity);
    const wanted = parseIntegrity(pinned);
    let found: string;
    try {
      found = wanted === undefined ? `unreadable integrity ${pinned}` : (await checkFile(entry.path, wanted)).found;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw cause;
      found = 'missing';
    }
    if (found === wanted) continue;
    damaged.push({ key: entry.key, path: entry.path, wanted: pinned, found });
    await dropEntry(cacheDir, entry.key, entry.path);
  }
  return { checkedCount: entries.length, damaged };
}

/**
 * Writes the file at `path` into another tool's cacache folder `cacheDir` (npm's
 * `_cacache`, say) under `key` with `integrity` and `metadata`, the way that tool would
 * have: used to hand verified bytes to `npm ci --offline`. cacache checks `integrity`
 * as it writes (EINTEGRITY on a mismatch). Writes only below `cacheDir`.
 */
export async function writeToolCacheEntry(cacheDir: string, key: string, path: string, integrity: string, metadata: unknown): Promise<void> {
  await pipeline(createReadStream(path), (await cacache()).put.stream(cacheDir, key, { integrity, metadata }));
}

/**
 * The `origin` kept with a pinned source's cache entry by insertIntoStore (a URL, or for
 * a wheel its file name), or undefined when the cache has no entry for `integrity`.
 */
export async function originInStore(cacheDir: string, integrity: Integrity): Promise<string | undefined> {
  const info = await (await cacache()).get.info(cacheDir, keyOf(integrity));
  const origin = (info?.metadata as { origin?: unknown } | undefined)?.origin;
  return typeof origin === 'string' ? origin : undefined;
}
