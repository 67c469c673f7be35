/** The content-addressed download cache: a thin wrapper over cacache (its only importer). */

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import cacache from 'cacache';
import { algorithmOf, type Integrity } from './integrity.js';

/**
 * The cache folder: `$REDO_TS_CACHE` when set and non-empty, else `~/.cache/redo-ts`.
 * Pure: reads only the `env` it is given.
 */
export function cacheDirFrom(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.REDO_TS_CACHE;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.cache', 'redo-ts');
}

/** Index key of a source in the cache: the pin itself, so equal pins share one copy. */
function keyOf(integrity: Integrity): string {
  return `redo-ts:source:${integrity}`;
}

/**
 * Path of the cached bytes pinned by `integrity`, or undefined when the cache has none.
 * The file is shared and must be treated as read-only. Does not re-hash it: callers
 * verify before use.
 */
export async function findInStore(cacheDir: string, integrity: Integrity): Promise<string | undefined> {
  const info = await cacache.get.info(cacheDir, keyOf(integrity));
  if (!info) return undefined;
  try {
    await stat(info.path);
    return info.path;
  } catch {
    return undefined;
  }
}

/**
 * Copies the file at `path`, whose bytes the caller has already checked against
 * `integrity`, into the cache and returns the cached path. cacache hashes again as it
 * writes and moves the content into place atomically, so a crash leaves no partial
 * entry. `origin` (a URL) is kept in the index entry's metadata for humans.
 */
export async function insertIntoStore(cacheDir: string, integrity: Integrity, path: string, origin: string): Promise<string> {
  const options = { integrity, algorithms: [algorithmOf(integrity)], metadata: { origin } };
  const { size } = await stat(path);
  if (size === 0) {
    // cacache's write stream rejects an empty input, so empty files go in as a buffer.
    await cacache.put(cacheDir, keyOf(integrity), Buffer.alloc(0), options);
  } else {
    await pipeline(createReadStream(path), cacache.put.stream(cacheDir, keyOf(integrity), options));
  }
  const stored = await findInStore(cacheDir, integrity);
  if (stored === undefined) throw new Error(`cache entry for ${integrity} vanished after insert`);
  return stored;
}

/**
 * Path and metadata of the cached file stored under `key` (a namespaced key such as
 * `redo-ts:debian-effects:HEX`, for derived data rather than pinned sources), or
 * undefined. Shared, read-only; cacache verified it when it was written.
 */
export async function findKeyedInStore(cacheDir: string, key: string): Promise<{ path: string; metadata: unknown } | undefined> {
  const info = await cacache.get.info(cacheDir, key);
  if (!info) return undefined;
  try {
    await stat(info.path);
    return { path: info.path, metadata: info.metadata };
  } catch {
    return undefined;
  }
}

/** Stores the file at `path` under `key` with `metadata`, atomically; returns the cached path. */
export async function insertKeyedIntoStore(cacheDir: string, key: string, path: string, metadata: unknown): Promise<string> {
  await pipeline(createReadStream(path), cacache.put.stream(cacheDir, key, { metadata }));
  const stored = await findKeyedInStore(cacheDir, key);
  if (stored === undefined) throw new Error(`cache entry ${key} vanished after insert`);
  return stored.path;
}

/**
 * Writes the file at `path` into another tool's cacache folder `cacheDir` (npm's
 * `_cacache`, say) under `key` with `integrity` and `metadata`, the way that tool would
 * have: used to hand verified bytes to `npm ci --offline`. cacache checks `integrity`
 * as it writes (EINTEGRITY on a mismatch). Writes only below `cacheDir`.
 */
export async function writeToolCacheEntry(cacheDir: string, key: string, path: string, integrity: string, metadata: unknown): Promise<void> {
  await pipeline(createReadStream(path), cacache.put.stream(cacheDir, key, { integrity, metadata }));
}

/**
 * The `origin` kept with a pinned source's cache entry by insertIntoStore (a URL, or for
 * a wheel its file name), or undefined when the cache has no entry for `integrity`.
 */
export async function originInStore(cacheDir: string, integrity: Integrity): Promise<string | undefined> {
  const info = await cacache.get.info(cacheDir, keyOf(integrity));
  const origin = (info?.metadata as { origin?: unknown } | undefined)?.origin;
  return typeof origin === 'string' ? origin : undefined;
}
